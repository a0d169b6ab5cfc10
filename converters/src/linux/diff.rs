//! A small line diff for showing edits in `--dry-run` output: only the changed lines, each hunk
//! headed by `@@ line N` (1-based line of the old file).

/// Above this many line pairs the middle part is shown as removed-then-added instead of an LCS.
const LCS_LIMIT: usize = 1_000_000;

/// The changed lines between `before` and `after`: `-old`, `+new`, grouped in hunks.
pub fn line_diff(before: &str, after: &str) -> Vec<String> {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let ops = if am.len().saturating_mul(bm.len()) > LCS_LIMIT {
        am.iter()
            .map(|l| Op::Del(l))
            .chain(bm.iter().map(|l| Op::Add(l)))
            .collect()
    } else {
        lcs_ops(am, bm)
    };
    let mut out = Vec::new();
    let mut old_line = prefix + 1;
    let mut in_hunk = false;
    for op in ops {
        match op {
            Op::Same => {
                old_line += 1;
                in_hunk = false;
            }
            Op::Del(l) | Op::Add(l) => {
                if !in_hunk {
                    out.push(format!("@@ line {old_line}"));
                    in_hunk = true;
                }
                if matches!(op, Op::Del(_)) {
                    out.push(format!("-{l}"));
                    old_line += 1;
                } else {
                    out.push(format!("+{l}"));
                }
            }
        }
    }
    if before.ends_with('\n') != after.ends_with('\n') && !before.is_empty() && !after.is_empty() {
        out.push("(newline at end of file changed)".into());
    }
    out
}

enum Op<'a> {
    Same,
    Del(&'a str),
    Add(&'a str),
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    // len[i][j] = LCS length of a[i..], b[j..]
    let mut len = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[at(i, j)] = if a[i] == b[j] {
                len[at(i + 1, j + 1)] + 1
            } else {
                len[at(i + 1, j)].max(len[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same);
            i += 1;
            j += 1;
        } else if i < n && (j == m || len[at(i + 1, j)] >= len[at(i, j + 1)]) {
            ops.push(Op::Del(a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn shows_only_changed_lines() {
        let d = line_diff("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n");
        assert_eq!(d, vec!["@@ line 2", "-b", "+B", "@@ line 5", "+e"]);
    }
}
