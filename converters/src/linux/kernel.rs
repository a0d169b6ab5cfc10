//! Kernel choice: refuse Xen PV-only kernels, prefer virtio support, then the highest version,
//! then a non-debug build.

use super::facts::{GuestFacts, KernelFacts, VirtioInterface};
use super::LinuxError;
use std::cmp::Ordering;

/// Compares kernel versions the way `rpmvercmp`/`dpkg` roughly do: digit runs numerically,
/// other runs as text (`6.1.0-27-amd64` > `6.1.0-9-amd64`).
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let chunks = |s: &str| -> Vec<(bool, String)> {
        let mut v: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            if !c.is_ascii_alphanumeric() {
                v.push((false, String::new()));
                continue;
            }
            match v.last_mut() {
                Some((d, s)) if *d == digit && !s.is_empty() => s.push(c),
                _ => v.push((digit, c.to_string())),
            }
        }
        v.into_iter().filter(|(_, s)| !s.is_empty()).collect()
    };
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (xs, ys) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                xs.len().cmp(&ys.len()).then_with(|| xs.cmp(ys))
            }
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.1.cmp(&y.1),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len())
}

/// The score of a kernel: virtio block and network drivers, then version, then non-debug.
fn better(a: &KernelFacts, b: &KernelFacts) -> Ordering {
    let virtio = |k: &KernelFacts| u8::from(k.has("virtio_blk")) + u8::from(k.has("virtio_net"));
    virtio(a)
        .cmp(&virtio(b))
        .then_with(|| version_cmp(&a.version, &b.version))
        .then_with(|| b.is_debug().cmp(&a.is_debug()))
}

/// The kernel the converted guest should boot.
pub fn choose(facts: &GuestFacts) -> Result<&KernelFacts, LinuxError> {
    if facts.kernels.is_empty() {
        return Err(LinuxError::NoKernel);
    }
    let best = facts
        .kernels
        .iter()
        .filter(|k| !k.xen_pv_only)
        .max_by(|a, b| better(a, b));
    best.ok_or_else(|| LinuxError::NoKvmKernel {
        kernels: facts
            .kernels
            .iter()
            .map(|k| k.version.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The virtio device model the guest's kernels need, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VirtioNeed {
    /// Transitional devices (a legacy I/O BAR) rather than modern-only ones.
    pub transitional: bool,
    /// The kernel the decision rests on.
    pub kernel: String,
    /// That kernel's virtio-pci interface.
    pub interface: VirtioInterface,
    /// That kernel's evidence.
    pub reason: String,
}

/// Transitional devices when any kernel that can boot on KVM needs them (the chosen one
/// first, so its reason is named), else modern.
pub fn virtio_need(facts: &GuestFacts, best: &KernelFacts) -> VirtioNeed {
    let need = |k: &KernelFacts| VirtioNeed {
        transitional: k.virtio_pci.interface.needs_transitional(),
        kernel: k.version.clone(),
        interface: k.virtio_pci.interface,
        reason: k.virtio_pci.reason.clone(),
    };
    if best.virtio_pci.interface.needs_transitional() {
        return need(best);
    }
    facts
        .kernels
        .iter()
        .filter(|k| !k.xen_pv_only && k.virtio_pci.interface.needs_transitional())
        .map(need)
        .next()
        .unwrap_or_else(|| need(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            version_cmp("6.1.0-27-amd64", "6.1.0-9-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            version_cmp(
                "5.14.0-427.13.1.el9_4.x86_64",
                "5.14.0-70.13.1.el9_0.x86_64"
            ),
            Ordering::Greater
        );
        assert_eq!(version_cmp("4.18.0", "4.18.0-1"), Ordering::Less);
        assert_eq!(
            version_cmp("2.6.32-754.el6", "2.6.32-754.el6"),
            Ordering::Equal
        );
    }
}
