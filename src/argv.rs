//! virt-v2v spells some options with two letters after one dash (`-os DIR`, `-of qcow2`).
//! clap takes only single-letter short options, so those are rewritten to their long forms
//! before parsing.

use std::ffi::OsString;

const TWO_LETTER: &[(&str, &str)] = &[
    ("-ic", "--input-conn"),
    ("-if", "--input-format"),
    ("-io", "--input-option"),
    ("-it", "--input-transport"),
    ("-oa", "--output-allocation"),
    ("-oc", "--output-conn"),
    ("-of", "--output-format"),
    ("-on", "--output-name"),
    ("-oo", "--output-option"),
    ("-op", "--output-password"),
    ("-os", "--output-storage"),
];

/// Rewrites virt-v2v's two-letter options (`-os DIR`, `-os=DIR`) to long options.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            let Some(s) = arg.to_str() else { return arg };
            for (short, long) in TWO_LETTER {
                if s == *short {
                    return OsString::from(*long);
                }
                if let Some(rest) = s.strip_prefix(short).and_then(|r| r.strip_prefix('=')) {
                    return OsString::from(format!("{long}={rest}"));
                }
            }
            arg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_two_letter_options() {
        let v: Vec<OsString> =
            ["ferry", "convert", "-os", "out", "-of=qcow2", "-o", "local", "-n", "x"].map(OsString::from).into();
        let got = normalize(v);
        let got: Vec<&str> = got.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            got,
            ["ferry", "convert", "--output-storage", "out", "--output-format=qcow2", "-o", "local", "-n", "x"]
        );
    }
}
