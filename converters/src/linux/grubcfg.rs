//! GRUB 2 `grub.cfg` menus as `grub-mkconfig` writes them: entries, submenus, their ids and
//! titles, and which entry a `GRUB_DEFAULT`-style selector picks.

/// One bootable entry of a menu: its position in each (sub)menu level.
#[derive(Debug, Clone)]
pub struct Entry {
    /// (index in its menu, id, title) for each level, outermost first.
    pub path: Vec<(usize, Option<String>, String)>,
    /// The kernel image path of its `linux` line.
    pub kernel: Option<String>,
}

impl Entry {
    /// The entry by ids (titles where there is no id), `>`-joined.
    pub fn selector(&self) -> String {
        let parts: Vec<String> = self
            .path
            .iter()
            .map(|(_, id, title)| id.clone().unwrap_or_else(|| title.clone()))
            .collect();
        parts.join(">")
    }
    /// The entry by titles, `>`-joined (what `grub2-set-default` writes on RHEL 7).
    pub fn title_selector(&self) -> String {
        let parts: Vec<&str> = self
            .path
            .iter()
            .map(|(_, _, title)| title.as_str())
            .collect();
        parts.join(">")
    }
}

/// The first quoted (or bare) word after `menuentry`/`submenu`, and the `$menuentry_id_option` id.
fn title_and_id(line: &str) -> (String, Option<String>) {
    let quoted = |s: &str| -> Option<(String, usize)> {
        let s_trim = s.trim_start();
        let off = s.len() - s_trim.len();
        let q = s_trim.chars().next()?;
        if q == '\'' || q == '"' {
            let end = s_trim[1..].find(q)?;
            Some((s_trim[1..1 + end].to_owned(), off + end + 2))
        } else {
            let end = s_trim.find(char::is_whitespace).unwrap_or(s_trim.len());
            Some((s_trim[..end].to_owned(), off + end))
        }
    };
    let after_kw = line
        .trim_start()
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r);
    let title = quoted(after_kw).map(|(t, _)| t).unwrap_or_default();
    let id = line
        .split_once("$menuentry_id_option")
        .and_then(|(_, r)| quoted(r))
        .map(|(t, _)| t);
    (title, id)
}

/// The bootable entries of a GRUB 2 `grub.cfg`, in menu order.
pub fn grub2_entries(text: &str) -> Vec<Entry> {
    enum Frame {
        Menu(Entry),
        Sub,
        Other,
    }
    let mut frames: Vec<Frame> = Vec::new();
    let mut counters: Vec<usize> = vec![0];
    let mut path: Vec<(usize, Option<String>, String)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let kw = t.split_whitespace().next().unwrap_or("");
        if (kw == "menuentry" || kw == "submenu") && t.ends_with('{') {
            let (title, id) = title_and_id(t);
            let level = counters.len() - 1;
            let idx = counters.get(level).copied().unwrap_or(0);
            if let Some(c) = counters.last_mut() {
                *c += 1;
            }
            let mut p = path.clone();
            p.push((idx, id, title));
            if kw == "submenu" {
                path = p;
                counters.push(0);
                frames.push(Frame::Sub);
            } else {
                frames.push(Frame::Menu(Entry {
                    path: p,
                    kernel: None,
                }));
            }
        } else if t.ends_with('{') {
            frames.push(Frame::Other);
        } else if t == "}" {
            match frames.pop() {
                Some(Frame::Menu(e)) => out.push(e),
                Some(Frame::Sub) => {
                    path.pop();
                    counters.pop();
                }
                _ => {}
            }
        } else if ["linux", "linux16", "linuxefi", "kernel"].contains(&kw) {
            if let Some(Frame::Menu(e)) = frames.last_mut() {
                e.kernel = t.split_whitespace().nth(1).map(str::to_owned);
            }
        }
    }
    out
}

/// The entry a `GRUB_DEFAULT`-style selector picks (first entry if it matches nothing).
pub fn select<'e>(entries: &'e [Entry], selector: &str) -> Option<&'e Entry> {
    let parts: Vec<&str> = selector.split('>').collect();
    let matches = |e: &Entry| {
        parts.iter().enumerate().all(|(k, p)| {
            e.path.get(k).is_some_and(|(idx, id, title)| {
                p.parse::<usize>().ok() == Some(*idx) || id.as_deref() == Some(*p) || title == p
            })
        })
    };
    entries.iter().find(|e| matches(e)).or(entries.first())
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').trim_matches('\'').to_owned()
}

/// `GRUB_DEFAULT` from `/etc/default/grub` (unset means `0`).
pub fn grub_default(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("GRUB_DEFAULT="))
        .next_back()
        .map_or_else(|| "0".to_owned(), unquote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_entries_and_selectors() {
        let cfg = "set default=\"0\"\nfunction f {\n}\nmenuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-U' {\n\tlinux /boot/vmlinuz-6.1.0-2 root=/dev/sda1\n}\nsubmenu 'Advanced' $menuentry_id_option 'gnulinux-advanced-U' {\n\tmenuentry 'Debian, 6.1.0-2' $menuentry_id_option 'gnulinux-6.1.0-2-advanced-U' {\n\t\tlinux /boot/vmlinuz-6.1.0-2 ro\n\t}\n\tmenuentry 'Debian, 6.1.0-1' $menuentry_id_option 'gnulinux-6.1.0-1-advanced-U' {\n\t\tlinux /boot/vmlinuz-6.1.0-1 ro\n\t}\n}\n";
        let e = grub2_entries(cfg);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[2].selector(),
            "gnulinux-advanced-U>gnulinux-6.1.0-1-advanced-U"
        );
        assert_eq!(
            select(&e, "1>1").and_then(|x| x.kernel.clone()).as_deref(),
            Some("/boot/vmlinuz-6.1.0-1")
        );
        assert_eq!(
            select(&e, "Advanced>Debian, 6.1.0-2")
                .and_then(|x| x.kernel.clone())
                .as_deref(),
            Some("/boot/vmlinuz-6.1.0-2")
        );
        assert_eq!(grub_default("GRUB_DEFAULT=saved\n"), "saved");
    }
}
