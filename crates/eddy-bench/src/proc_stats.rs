//! Process CPU time and peak memory, read from Linux's `/proc`.

/// Clock ticks per second of the times in `/proc/<pid>/stat`: `USER_HZ`,
/// which Linux fixes at 100 in its user-space ABI whatever the kernel's
/// internal tick rate. Resolution is thus 10 ms, small against benchmark
/// runs of seconds.
const USER_HZ: f64 = 100.0;

/// CPU time of the whole process (user + system, all threads), in seconds;
/// `None` where `/proc` is unavailable.
pub fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Peak resident set size of the process (`VmHWM`), in bytes.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reading_proc_then_cpu_time_and_peak_rss_are_plausible() {
        let before = process_cpu_secs().expect("Linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(process_cpu_secs().expect("Linux /proc") >= before);
        assert!(peak_rss_bytes().expect("Linux /proc") > 1024 * 1024);
    }
}
