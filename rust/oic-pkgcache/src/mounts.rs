//! Mount points from `/proc/self/mountinfo`, to keep `clean` from deleting into a mount.

use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Returns the first mount point at or below `path`, if any. `path` should be canonical,
/// because mountinfo lists canonical paths.
pub fn mount_under(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let text = std::fs::read_to_string(MOUNTINFO)?;
    let found = mount_points(&text).find(|mount_point| mount_point.starts_with(path));
    Ok(found)
}

/// Yields the mount point of each mountinfo line (the fifth field), with octal escapes such as
/// `\040` for a space decoded.
fn mount_points(text: &str) -> impl Iterator<Item = PathBuf> + '_ {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4).filter(|digits| {
            bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0_u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_decoded() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 0:5 / /var/tmp/x/chrootenv/proc rw - proc proc rw\n";
        let points: Vec<PathBuf> = mount_points(text).collect();
        assert_eq!(points[0], PathBuf::from("/mnt/with space"));
        assert_eq!(points[1], PathBuf::from("/var/tmp/x/chrootenv/proc"));
    }

    #[test]
    fn some_mount_is_under_root() {
        assert!(mount_under(Path::new("/")).unwrap().is_some());
    }
}
