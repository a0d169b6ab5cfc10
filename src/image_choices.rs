//! The output-image choices the CLI offers, spelled once and mapped onto the conversion
//! engine's own types: `-of` / `-O` (`qcow2`, `raw`) onto [`OutputFormat`], `-oa` (`sparse`,
//! `preallocated`) onto qcow2 [`Preallocation`] (off, full).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use ferry_formats::convert::OutputFormat;
use ferry_formats::qcow2::Preallocation;

/// Output formats by their command-line name.
static FORMATS: [(&str, OutputFormat); 2] = [("qcow2", OutputFormat::Qcow2), ("raw", OutputFormat::Raw)];

/// `-oa` allocations (virt-v2v's spelling) by their command-line name.
static ALLOCATIONS: [(&str, Preallocation); 2] =
    [("sparse", Preallocation::Off), ("preallocated", Preallocation::Full)];

/// The output format called `name` (`qcow2`, `raw`).
pub fn output_format(name: &str) -> Option<OutputFormat> {
    FORMATS.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
}

/// The command-line name of an output format.
pub fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Qcow2 => "qcow2",
        OutputFormat::Raw => "raw",
    }
}

/// clap parser for `-of`: `qcow2` or `raw` (listed in `--help` and in the error).
pub fn format_parser() -> impl TypedValueParser<Value = OutputFormat> {
    parser(&FORMATS)
}

/// clap parser for `-oa`: `sparse` or `preallocated`.
pub fn allocation_parser() -> impl TypedValueParser<Value = Preallocation> {
    parser(&ALLOCATIONS)
}

fn parser<T: Copy + Send + Sync + 'static>(
    table: &'static [(&'static str, T)],
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(table.iter().map(|&(n, _)| n)).try_map(move |s| {
        table.iter().find(|(n, _)| *n == s).map(|&(_, v)| v).ok_or_else(|| format!("unknown value {s:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, format) in FORMATS {
            assert_eq!(output_format(name), Some(format));
            assert_eq!(format_name(format), name);
        }
        assert_eq!(output_format("vdi"), None);
    }
}
