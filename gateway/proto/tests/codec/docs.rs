//! docs/PROTOCOL.md must match the code: its example bytes and its error
//! table are checked here, so the document cannot go stale.

use quiver_proto::{Encoder, fb};

const PROTOCOL_MD: &str = include_str!("../../../../docs/PROTOCOL.md");

/// The text between `<!-- {name}:begin -->` and `<!-- {name}:end -->`.
fn section(name: &str) -> &'static str {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = PROTOCOL_MD
        .find(&begin)
        .unwrap_or_else(|| panic!("{begin} missing"))
        + begin.len();
    let len = PROTOCOL_MD[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("{end} missing"));
    &PROTOCOL_MD[start..start + len]
}

/// The bytes of a hex dump whose lines read `0000  48 00 00 00 ...`.
fn parse_hex_dump(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|line| line.len() > 6 && line.as_bytes()[..4].iter().all(u8::is_ascii_hexdigit))
        .flat_map(|line| line[6..].split_whitespace())
        .map(|byte| u8::from_str_radix(byte, 16).expect("hex byte"))
        .collect()
}

#[test]
fn documented_hello_bytes_match_the_encoder() {
    let documented = parse_hex_dump(section("hello-hex"));
    let encoded = Encoder::new().hello(1, "tok", "cli/1");
    assert_eq!(
        documented,
        encoded.to_vec(),
        "update the Hello example in docs/PROTOCOL.md"
    );
}

#[test]
fn documented_error_codes_match_the_schema() {
    // Rows read `| 18 | GoingAway | ...`.
    let documented: Vec<(u16, String)> = section("error-codes")
        .lines()
        .filter_map(|row| {
            let mut cells = row.split('|').map(str::trim).skip(1);
            let value = cells.next()?.parse().ok()?;
            let name = cells.next()?.trim_matches('`').to_owned();
            Some((value, name))
        })
        .collect();
    let schema: Vec<(u16, String)> = fb::ErrorCode::ENUM_VALUES
        .iter()
        .filter(|code| **code != fb::ErrorCode::None)
        .map(|code| (code.0, code.variant_name().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(documented, schema);
}
