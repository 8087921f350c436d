//! Feeds arbitrary UTF-8 to the `Release` and date parsers, which must return errors and never
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(release) = oic_deb::Release::parse(text) {
        for entry in release.sha256.values() {
            assert_eq!(entry.hash.len(), 64);
        }
        let _ = release.is_expired(0);
    }

    let _ = oic_deb::parse_date(text);
});
