//! TOML scenario files: `quiver-load run FILE.toml [FLAGS...]`.
//!
//! A file names its command in `scenario` and sets flags by their long
//! names (dashes or underscores): the file becomes the command line
//! `quiver-load <scenario> --key value ...`, so files and flags can never
//! disagree and every flag is available. Flags after the file override it.
//!
//! ```toml
//! scenario = "chat"          # or "fanout", "bench fanout", ...
//! server = "127.0.0.1:4433"
//! insecure = true            # true: the flag is given; false: left out
//! rooms = 10
//! rate = 2.5
//! ```

use anyhow::{Context as _, bail};

/// The command line a scenario file stands for, without the program name.
pub fn to_args(text: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = toml::from_str(text).context("not a valid TOML scenario file")?;
    let scenario = table
        .get("scenario")
        .and_then(toml::Value::as_str)
        .context("the file needs `scenario = \"chat\"` (or fanout, connections, reconnect-storm, persist, tracking, bench fanout, ...)")?;
    let mut args: Vec<String> = scenario.split_whitespace().map(str::to_owned).collect();
    for (key, value) in &table {
        if key == "scenario" {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        push(&mut args, &flag, value).with_context(|| format!("key `{key}`"))?;
    }
    Ok(args)
}

fn push(args: &mut Vec<String>, flag: &str, value: &toml::Value) -> anyhow::Result<()> {
    match value {
        toml::Value::Boolean(true) => args.push(flag.to_owned()),
        toml::Value::Boolean(false) => {}
        toml::Value::String(s) => args.extend([flag.to_owned(), s.clone()]),
        toml::Value::Integer(i) => args.extend([flag.to_owned(), i.to_string()]),
        toml::Value::Float(f) => args.extend([flag.to_owned(), f.to_string()]),
        toml::Value::Array(items) => {
            for item in items {
                push(args, flag, item)?;
            }
        }
        other => bail!(
            "{} values are not flags; use strings, numbers or booleans",
            other.type_str()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_flags() {
        let args = to_args(
            r#"
            scenario = "chat"
            server = "127.0.0.1:4433"
            insecure = true
            progress = "off"
            rooms = 2
            rate = 2.5
            connect_concurrency = 8
            subscribe = false
            "#,
        )
        .expect("valid");
        assert_eq!(args[0], "chat");
        let line = args.join(" ");
        for part in [
            "--server 127.0.0.1:4433",
            "--insecure",
            "--rooms 2",
            "--rate 2.5",
            "--connect-concurrency 8",
            "--progress off",
        ] {
            assert!(line.contains(part), "{line} lacks {part}");
        }
        assert!(!line.contains("subscribe"));
    }

    #[test]
    fn shipped_examples_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("read");
                let args = to_args(&text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(!args.is_empty());
                seen += 1;
            }
        }
        assert!(seen >= 5, "only {seen} example files");
    }

    #[test]
    fn bench_files_name_two_words_and_errors_say_why() {
        let args = to_args("scenario = \"bench fanout\"\nsubscribers = [1, 2]").expect("valid");
        assert_eq!(
            args,
            [
                "bench",
                "fanout",
                "--subscribers",
                "1",
                "--subscribers",
                "2"
            ]
        );
        assert!(to_args("rooms = 2").is_err());
        assert!(to_args("scenario = \"chat\"\n[limits]\nx = 1").is_err());
        assert!(to_args("scenario = ").is_err());
    }
}
