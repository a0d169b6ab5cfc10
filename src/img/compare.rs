//! `ferry img compare`: 0 identical, 1 different ("Content mismatch at offset N!"), 2 error.
use super::{open, parse_format};
use ferry_formats::disk::{BlockDevice, ExtentKind, ImageFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Format of the first image.
    #[arg(short = 'f', value_parser = parse_format)]
    format_a: Option<ImageFormat>,
    /// Format of the second image.
    #[arg(short = 'F', value_parser = parse_format)]
    format_b: Option<ImageFormat>,
    /// Strict mode: images of different sizes differ.
    #[arg(short = 's')]
    strict: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    a: PathBuf,
    b: PathBuf,
}

/// Bytes mapped per step, and bytes read per comparison.
const WINDOW: u64 = 256 << 20;
const READ: u64 = 4 << 20;

enum Verdict {
    Identical,
    Mismatch(u64),
    SizeMismatch,
}

pub fn run(a: CompareArgs) -> anyhow::Result<ExitCode> {
    let verdict = (|| -> anyhow::Result<Verdict> {
        let ia = open(&a.a, a.format_a)?;
        let ib = open(&a.b, a.format_b)?;
        compare(&*ia, &*ib, a.strict)
    })();
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ferry: {}", crate::error_line(&e));
            return Ok(ExitCode::from(2));
        }
    };
    let (code, text, offset) = match verdict {
        Verdict::Identical => (0, "Images are identical.".to_string(), None),
        Verdict::Mismatch(off) => (1, format!("Content mismatch at offset {off}!"), Some(off)),
        Verdict::SizeMismatch => (1, "Strict mode: Image size mismatch!".to_string(), None),
    };
    if a.json {
        let v = serde_json::json!({ "identical": code == 0, "mismatch-offset": offset, "message": text });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{text}");
    }
    Ok(ExitCode::from(code))
}

fn compare(a: &dyn BlockDevice, b: &dyn BlockDevice, strict: bool) -> anyhow::Result<Verdict> {
    if strict && a.size() != b.size() {
        return Ok(Verdict::SizeMismatch);
    }
    let common = a.size().min(b.size());
    let mut windows = super::Windows::new(common, WINDOW);
    while let Some((pos, len)) = windows.next_window() {
        let ranges = ranges_to_read(&[a.map(pos, len)?, b.map(pos, len)?], pos, pos + len);
        for &(start, end) in &ranges {
            if let Some(off) = compare_range(a, Some(b), start, end)? {
                return Ok(Verdict::Mismatch(off));
            }
        }
        windows.done(ranges.is_empty());
    }
    // The longer image's tail must read as zeros.
    let longer = if a.size() > b.size() { a } else { b };
    let mut windows = super::Windows::new(longer.size() - common, WINDOW);
    while let Some((rel, len)) = windows.next_window() {
        let pos = common + rel;
        let ranges = ranges_to_read(&[longer.map(pos, len)?], pos, pos + len);
        for &(start, end) in &ranges {
            if let Some(off) = compare_range(longer, None, start, end)? {
                return Ok(Verdict::Mismatch(off));
            }
        }
        windows.done(ranges.is_empty());
    }
    Ok(Verdict::Identical)
}

/// The parts of `[start, end)` where any of the maps has data.
fn ranges_to_read(maps: &[Vec<ferry_formats::Extent>], start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut data: Vec<(u64, u64)> = maps
        .iter()
        .flatten()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| (e.offset.max(start), (e.offset + e.length).min(end)))
        .filter(|(s, e)| s < e)
        .collect();
    data.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in data {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Compares `[start, end)` of `a` with `b` (or with zeros); returns the first differing
/// 512-byte sector's offset.
fn compare_range(a: &dyn BlockDevice, b: Option<&dyn BlockDevice>, start: u64, end: u64) -> anyhow::Result<Option<u64>> {
    let mut pos = start;
    let mut ba = vec![0u8; READ as usize];
    let mut bb = vec![0u8; READ as usize];
    while pos < end {
        let n = READ.min(end - pos) as usize;
        let (ra, rb) = rayon::join(
            || a.read_at(&mut ba[..n], pos),
            || match b {
                Some(b) => b.read_at(&mut bb[..n], pos),
                None => {
                    bb[..n].fill(0);
                    Ok(())
                }
            },
        );
        ra?;
        rb?;
        if ba[..n] != bb[..n] {
            let i = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y).unwrap_or(0) as u64;
            return Ok(Some((pos + i) / 512 * 512));
        }
        pos += n as u64;
    }
    Ok(None)
}
