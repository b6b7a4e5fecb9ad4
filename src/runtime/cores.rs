//! How many cores this process may use: the pools' default worker count, and whether an idle
//! worker may spin (more spinners than cores would only take turns on them).
//!
//! On Linux this reads what `std::thread::available_parallelism` reads — the affinity mask
//! (`sched_getaffinity`, else `sysconf(_SC_NPROCESSORS_ONLN)`) capped by the cgroup CPU quota
//! (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the smallest over the group and
//! its ancestors) — so a pool in a quota-limited container neither starts a worker per host core
//! nor spins past its quota. It is written here, over byte slices, because std's version is
//! about 13 KB of a small program (its path, string-trimming and buffered-reader code), and
//! this one a fraction of that. Elsewhere std's own is used.
//!
//! The answer is computed once per process and kept: a pool builder asks for it on every
//! `build`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The cores this process may use (at least 1), computed on first use and kept.
pub(crate) fn available_cores() -> usize {
    static CORES: AtomicUsize = AtomicUsize::new(0);
    // ORDERING: Relaxed: the value is a plain number; two threads that both find 0 both
    // compute the same answer.
    match CORES.load(Ordering::Relaxed) {
        0 => {
            let n = count().max(1);
            CORES.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

#[cfg(not(target_os = "linux"))]
fn count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(target_os = "linux")]
fn count() -> usize {
    // Miri cannot open files under isolation, and has no parallelism to find.
    let quota = if cfg!(miri) {
        usize::MAX
    } else {
        linux::quota("")
    };
    let cpus = match crate::sys::affinity_count() {
        Some(n) if n > 0 => n,
        _ => crate::sys::online_cpus(),
    };
    cpus.min(quota.max(1))
}

#[cfg(target_os = "linux")]
mod linux {
    //! Written for size: byte slices, one non-generic field splitter, a hand-rolled number
    //! parser, and paths built in plain byte vectors (no `Path`, `str` searching or trimming).

    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    /// Reads a whole file; `None` if it cannot be read.
    fn read(path: &[u8]) -> Option<Vec<u8>> {
        std::fs::read(OsStr::from_bytes(path)).ok()
    }

    /// True if `path` can be opened: a file, or a directory (opened read-only, as `open(2)`
    /// allows), as cgroup files and directories are for everyone.
    fn exists(path: &[u8]) -> bool {
        std::fs::File::open(OsStr::from_bytes(path)).is_ok()
    }

    /// The parts of `text` between the separators `sep` (one copy of the code for every use).
    pub(super) struct Fields<'a> {
        rest: Option<&'a [u8]>,
        sep: u8,
    }

    pub(super) fn fields(text: &[u8], sep: u8) -> Fields<'_> {
        Fields {
            rest: Some(text),
            sep,
        }
    }

    impl<'a> Iterator for Fields<'a> {
        type Item = &'a [u8];

        fn next(&mut self) -> Option<&'a [u8]> {
            let rest = self.rest?;
            match rest.iter().position(|&b| b == self.sep) {
                Some(i) => {
                    self.rest = Some(&rest[i + 1..]);
                    Some(&rest[..i])
                }
                None => {
                    self.rest = None;
                    Some(rest)
                }
            }
        }
    }

    /// An unsigned decimal as `str::parse::<usize>` reads one: an optional `+`, then digits;
    /// `None` for anything else (`max`, `-1`) or on overflow.
    pub(super) fn number(text: &[u8]) -> Option<usize> {
        let digits = text.strip_prefix(b"+").unwrap_or(text);
        if digits.is_empty() {
            return None;
        }
        let mut n: usize = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
        }
        Some(n)
    }

    /// `a` + `b`.
    fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut path = Vec::with_capacity(a.len() + b.len() + 1);
        path.extend_from_slice(a);
        path.extend_from_slice(b);
        path
    }

    /// `dir` + `/` + `name`.
    fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
        let mut path = cat(dir, b"/");
        path.extend_from_slice(name);
        path
    }

    /// `mount` + the components of `group` (an absolute or relative cgroup path).
    fn group_dir(mount: &[u8], group: &[u8]) -> Vec<u8> {
        let mut dir = mount.to_vec();
        for part in fields(group, b'/').filter(|p| !p.is_empty()) {
            dir.push(b'/');
            dir.extend_from_slice(part);
        }
        dir
    }

    /// Which hierarchy holds this process's CPU controller, from `/proc/self/cgroup`.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Group<'a> {
        /// cgroup v2 (`0::/path`).
        V2(&'a [u8]),
        /// cgroup v1, a hierarchy whose controllers include `cpu` (`4:cpu,cpuacct:/path`).
        V1(&'a [u8]),
    }

    /// The group of `/proc/self/cgroup`'s text: a v1 line with `cpu` wins over the v2 line,
    /// since it names its controller.
    pub(super) fn find_group(text: &[u8]) -> Option<Group<'_>> {
        let mut found = None;
        for line in fields(text, b'\n') {
            let mut parts = fields(line, b':');
            let (Some(_), Some(controllers), Some(_)) = (parts.next(), parts.next(), parts.rest)
            else {
                continue;
            };
            let path = parts.rest.unwrap_or_default();
            if controllers.is_empty() {
                found = found.or(Some(Group::V2(path)));
            } else if fields(controllers, b',').any(|c| c == b"cpu") {
                found = Some(Group::V1(path));
            }
        }
        found
    }

    /// The CPU quota in whole cores (rounded down; 0 for less than one), `usize::MAX` if there
    /// is none or it cannot be read. `root` prefixes every path read (empty but in tests).
    pub(super) fn quota(root: &str) -> usize {
        let root = root.as_bytes();
        let Some(text) = read(&cat(root, b"/proc/self/cgroup")) else {
            return usize::MAX;
        };
        let v1 = match find_group(&text) {
            Some(Group::V2(group)) => {
                let mount = cat(root, b"/sys/fs/cgroup");
                return walk(&mount, group, b"cgroup.controllers", v2_limit);
            }
            Some(Group::V1(group)) => group,
            None => return usize::MAX,
        };
        // A v1 hierarchy is looked for where cgroups(7) mounts it, then where
        // `/proc/self/mountinfo` says (a bind mount there may hide the group path's first part).
        for mount in [&b"/sys/fs/cgroup/cpu"[..], b"/sys/fs/cgroup/cpu,cpuacct"] {
            let mount = cat(root, mount);
            if exists(&group_dir(&mount, v1)) {
                return walk(&mount, v1, b"", v1_limit);
            }
        }
        let Some(text) = read(&cat(root, b"/proc/self/mountinfo")) else {
            return usize::MAX;
        };
        match find_v1_mount(&text, v1) {
            Some((mount, group)) => walk(&cat(root, mount), group, b"", v1_limit),
            None => usize::MAX,
        }
    }

    /// The smallest of `limit(dir)` from the group's directory up to the hierarchy's root
    /// (`mount`), if the group's directory has an entry `marker` (`b""`: the directory itself);
    /// else `usize::MAX`.
    fn walk(mount: &[u8], group: &[u8], marker: &[u8], limit: fn(&[u8]) -> Option<usize>) -> usize {
        let mut dir = group_dir(mount, group);
        if !exists(&join(&dir, marker)) {
            return usize::MAX; // not that hierarchy there
        }
        let mut quota = usize::MAX;
        while dir.len() >= mount.len() {
            quota = quota.min(limit(&dir).unwrap_or(usize::MAX));
            let parent = dir.iter().rposition(|&b| b == b'/').unwrap_or(0);
            dir.truncate(parent);
        }
        quota
    }

    /// A v2 directory's `cpu.max` quota: `$MAX $PERIOD`, where `$MAX` is a number or `max`.
    fn v2_limit(dir: &[u8]) -> Option<usize> {
        let text = read(&join(dir, b"cpu.max"))?;
        let mut parts = fields(fields(&text, b'\n').next()?, b' ');
        let limit = number(parts.next()?)?;
        limit.checked_div(number(parts.next()?)?)
    }

    /// A v1 directory's quota: `cpu.cfs_quota_us / cpu.cfs_period_us` (the quota is -1 for
    /// none).
    fn v1_limit(dir: &[u8]) -> Option<usize> {
        let limit = read(&join(dir, b"cpu.cfs_quota_us"))?;
        let period = read(&join(dir, b"cpu.cfs_period_us"))?;
        number(limit.trim_ascii())?.checked_div(number(period.trim_ascii())?)
    }

    /// The mount point of a v1 hierarchy with the `cpu` controller, from mountinfo's text, and
    /// the part of `group` below it: a bind mount of a sub-directory shows that sub-directory
    /// as its root (field 4), which `group` must start with.
    pub(super) fn find_v1_mount<'a, 'g>(
        text: &'a [u8],
        group: &'g [u8],
    ) -> Option<(&'a [u8], &'g [u8])> {
        // `id parent major:minor root mount-point options [optional...] - type source
        // super-options`
        for line in fields(text, b'\n') {
            let mut parts = fields(line.trim_ascii(), b' ');
            let (Some(sub), Some(mount)) = (parts.nth(3), parts.next()) else {
                continue;
            };
            let mut tail = parts.skip_while(|&f| f != b"-").skip(1);
            let (Some(fs_type), Some(_), Some(options)) = (tail.next(), tail.next(), tail.next())
            else {
                continue;
            };
            if fs_type != b"cgroup" || !fields(options, b',').any(|o| o == b"cpu") {
                continue;
            }
            if let Some(rest) = below(group, sub) {
                return Some((mount, rest));
            } // else a bind mount of a directory that does not hold our group
        }
        None
    }

    /// `path` without the leading components `prefix` (both `/`-separated), if it has them.
    fn below<'g>(path: &'g [u8], prefix: &[u8]) -> Option<&'g [u8]> {
        let trim = |p: &[u8]| -> usize { p.iter().take_while(|&&b| b == b'/').count() };
        let path = &path[trim(path)..];
        let prefix = &prefix[trim(prefix)..];
        let rest = path.strip_prefix(prefix)?;
        (prefix.is_empty() || rest.is_empty() || rest[0] == b'/').then_some(rest)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_cgroup_line_with_the_cpu_controller_wins_over_the_v2_line() {
            let v2 = b"0::/user.slice/app.scope\n";
            assert_eq!(find_group(v2), Some(Group::V2(b"/user.slice/app.scope")));
            let mixed = b"0::/v2\n5:memory:/m\n4:cpu,cpuacct:/docker/abc\n";
            assert_eq!(find_group(mixed), Some(Group::V1(b"/docker/abc")));
            let no_cpu = b"5:memory:/m\n3:cpuset:/s\n";
            assert_eq!(find_group(no_cpu), None);
        }

        #[test]
        fn numbers_parse_as_std_parses_them() {
            assert_eq!(number(b"100000"), Some(100_000));
            assert_eq!(number(b"+7"), Some(7));
            assert_eq!(number(b"max"), None);
            assert_eq!(number(b"-1"), None, "v1's 'no quota'");
            assert_eq!(number(b""), None);
        }

        #[test]
        fn a_v1_mount_is_found_in_mountinfo_and_a_bind_mount_trims_the_group() {
            let text = b"22 1 0:20 / /sys rw - sysfs sysfs rw\n\
                31 25 0:27 / /mnt/cg/memory rw shared:2 - cgroup cgroup rw,memory\n\
                32 25 0:28 /docker /mnt/cg/cpu rw shared:3 - cgroup cgroup rw,cpu,cpuacct\n";
            let (mount, rest) = find_v1_mount(text, b"/docker/abc").unwrap();
            assert_eq!((mount, rest), (&b"/mnt/cg/cpu"[..], &b"/abc"[..]));
            assert_eq!(
                find_v1_mount(text, b"/dockerx/abc"),
                None,
                "a prefix of a name"
            );
            assert_eq!(find_v1_mount(text, b"/other"), None);
        }

        /// A scratch tree that stands for `/`: `/proc/self/...` and `/sys/fs/cgroup/...`.
        struct Root(std::path::PathBuf);

        impl Root {
            fn new(name: &str) -> Root {
                let dir =
                    std::env::temp_dir().join(format!("aplex-cores-{name}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                Root(dir)
            }

            fn file(&self, path: &str, text: &str) -> &Root {
                let path = self.0.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
                self
            }

            fn quota(&self) -> usize {
                quota(self.0.to_str().unwrap())
            }
        }

        impl Drop for Root {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        #[test]
        #[cfg_attr(miri, ignore)] // Miri opens no files under isolation
        fn a_v2_quota_is_the_smallest_on_the_way_up_to_the_root() {
            let root = Root::new("v2");
            root.file("/proc/self/cgroup", "0::/outer/inner\n")
                .file("/sys/fs/cgroup/cgroup.controllers", "cpu io\n")
                .file("/sys/fs/cgroup/outer/cpu.max", "300000 100000\n")
                .file("/sys/fs/cgroup/outer/inner/cgroup.controllers", "cpu\n")
                .file("/sys/fs/cgroup/outer/inner/cpu.max", "max 100000\n");
            assert_eq!(
                root.quota(),
                3,
                "the parent's 3 cores bind the unlimited child"
            );
            root.file("/sys/fs/cgroup/outer/inner/cpu.max", "150000 100000\n");
            assert_eq!(root.quota(), 1, "1.5 cores round down");
            root.file("/sys/fs/cgroup/outer/inner/cpu.max", "50000 100000\n");
            assert_eq!(root.quota(), 0, "half a core: the caller makes it 1");
        }

        #[test]
        #[cfg_attr(miri, ignore)] // Miri opens no files under isolation
        fn odd_quota_files_never_panic_and_never_read_as_a_limit_they_do_not_state() {
            let root = Root::new("odd");
            root.file("/proc/self/cgroup", "0::/g\n")
                .file("/sys/fs/cgroup/g/cgroup.controllers", "cpu\n");
            for (text, want) in [
                ("", usize::MAX),
                ("max", usize::MAX),
                ("max 100000\n", usize::MAX),
                ("garbage and more", usize::MAX),
                ("-100000 100000", usize::MAX),
                ("100000 0", usize::MAX), // a zero period: no division by zero
                ("100000", usize::MAX),   // no period at all
                ("99999999999999999999999 1", usize::MAX), // over usize: no overflow
                ("18446744073709551615 1", usize::MAX),
                ("0 100000", 0), // a zero quota: `count` makes it 1 core
                ("400000 100000 extra", 4),
            ] {
                root.file("/sys/fs/cgroup/g/cpu.max", text);
                assert_eq!(root.quota(), want, "cpu.max = {text:?}");
            }
            root.file("/proc/self/cgroup", "garbage\n\n:::\n");
            assert_eq!(root.quota(), usize::MAX, "an unreadable cgroup line");
            assert!(super::super::available_cores() >= 1);
        }

        #[test]
        #[cfg_attr(miri, ignore)] // Miri opens no files under isolation
        fn no_quota_reads_as_unlimited() {
            let root = Root::new("none");
            assert_eq!(root.quota(), usize::MAX, "no /proc/self/cgroup at all");
            root.file("/proc/self/cgroup", "0::/\n")
                .file("/sys/fs/cgroup/cgroup.controllers", "cpu\n");
            assert_eq!(root.quota(), usize::MAX, "the root group has no cpu.max");
            root.file("/proc/self/cgroup", "0::/gone\n");
            assert_eq!(
                root.quota(),
                usize::MAX,
                "a group not mounted where looked for"
            );
        }

        #[test]
        #[cfg_attr(miri, ignore)] // Miri opens no files under isolation
        fn a_v1_quota_is_read_at_the_usual_mount_or_the_one_mountinfo_names() {
            let root = Root::new("v1");
            root.file("/proc/self/cgroup", "0::/\n4:cpu,cpuacct:/docker/abc\n")
                .file(
                    "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
                    "-1\n",
                )
                .file(
                    "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
                    "100000\n",
                )
                .file(
                    "/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us",
                    "200000\n",
                )
                .file(
                    "/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us",
                    "100000\n",
                );
            assert_eq!(
                root.quota(),
                2,
                "the parent's quota binds the unlimited child"
            );

            let bound = Root::new("v1-bind");
            bound
                .file("/proc/self/cgroup", "4:cpu:/docker/abc\n")
                .file(
                    "/proc/self/mountinfo",
                    "40 25 0:30 /docker /mnt/cpu rw - cgroup cgroup rw,cpu\n",
                )
                .file("/mnt/cpu/abc/cpu.cfs_quota_us", "400000\n")
                .file("/mnt/cpu/abc/cpu.cfs_period_us", "100000\n");
            assert_eq!(
                bound.quota(),
                4,
                "the bind mount's root is cut from the group"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg_attr(miri, ignore)] // Miri reads no files and has one core
    fn the_count_is_what_std_finds() {
        let ours = super::count();
        let std = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            ours, std,
            "the same affinity mask and cgroup quota, read the same way"
        );
        assert_eq!(super::available_cores(), ours);
    }
}
