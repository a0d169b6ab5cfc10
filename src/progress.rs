//! The copy progress bar of `ferry img convert -p` and `ferry convert -p`: an indicatif bar
//! on stderr when it is a terminal, or when forced; into a pipe or file it prints plain lines.

use std::io::IsTerminal;

/// A bar over `total` bytes, if stderr is a terminal or `force` (`-p`) is set.
pub fn bar(total: u64, force: bool) -> Option<indicatif::ProgressBar> {
    if !force && !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::term_like(Box::new(StderrLines)));
    }
    Some(bar)
}

/// A progress target for a non-terminal stderr (`-p` into a pipe or file): plain lines.
#[derive(Debug)]
struct StderrLines;

impl indicatif::TermLike for StderrLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        eprintln!("{s}");
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if !s.trim().is_empty() {
            eprintln!("{s}");
        }
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}
