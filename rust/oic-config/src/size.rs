//! Byte sizes as written in templates: `4GiB`, `4G`, `4096 MiB`, `512`.
//!
//! Units follow coreutils and sfdisk: a bare letter (`K`, `M`, `G`, `T`) and the IEC forms
//! (`KiB` .. `TiB`) are powers of 1024, the SI forms (`kB`/`KB` .. `TB`) powers of 1000, and a
//! number without a unit is bytes.

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Parses a size into bytes. The error is a message that names the text and the accepted forms.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim();

    let invalid = || {
        format!(
            "Invalid size `{text}`: write a whole number with an optional unit, such as 4GiB, \
             4G, 512MiB or 4096 MiB"
        )
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let multiplier = unit_multiplier(unit).ok_or_else(invalid)?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("Size `{text}` is too large"))
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let binary = |power: u32| Some(1024_u64.pow(power));
    let decimal = |power: u32| Some(1000_u64.pow(power));
    match unit {
        "" | "B" => Some(1),
        "K" | "k" | "KiB" => binary(1),
        "M" | "MiB" => binary(2),
        "G" | "GiB" => binary(3),
        "T" | "TiB" => binary(4),
        "kB" | "KB" => decimal(1),
        "MB" => decimal(2),
        "GB" => decimal(3),
        "TB" => decimal(4),
        _ => None,
    }
}

/// Formats bytes with the largest binary unit that divides them, for messages: `513MiB`.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for (unit, size) in [
        ("TiB", 1024 * GIB),
        ("GiB", GIB),
        ("MiB", MIB),
        ("KiB", KIB),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        let cases = [
            ("4GiB", 4 * GIB),
            ("4G", 4 * GIB),
            ("4096 MiB", 4 * GIB),
            ("4GB", 4_000_000_000),
            ("512", 512),
            ("0", 0),
            ("1MiB", MIB),
            ("10 KB", 10_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn invalid_sizes_are_rejected() {
        for text in [
            "",
            "GiB",
            "4.5GiB",
            "-1G",
            "4 parsecs",
            "99999999999999999999",
        ] {
            assert!(parse_size(text).is_err(), "{text}");
        }
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes_format_with_units() {
        assert_eq!(format_size(513 * MIB), "513MiB");
        assert_eq!(format_size(4 * GIB), "4GiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
