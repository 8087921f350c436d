//! Feeds arbitrary UTF-8 to the paragraph parser and to `parse_packages`, which must return
//! errors and never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for paragraph in oic_deb::paragraphs(text) {
        let Ok(paragraph) = paragraph else {
            break;
        };
        for field in paragraph.fields() {
            assert!(paragraph.get(field.name()).is_some());
            let _ = field.first_line();
            let _ = field.continuation_lines().count();
            let _ = field.folded();
            let _ = field.multiline();
        }
    }

    let _ = oic_deb::parse_packages(text);
});
