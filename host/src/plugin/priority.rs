//! The scheduling class of a plugin's thread, and its CPU clock.
//!
//! The CPU share ([`super::limits::CpuShare`]) bounds what a plugin takes on average, but a
//! plugin's batch runs to its end (up to the call deadline) on a core of its own: on a
//! two-core machine a neighbour's tick then waits for the kernel's next tick (4 ms) to get
//! that core back. A thread in Linux's `SCHED_IDLE` class is preempted as soon as a normal
//! thread wakes and its core counts as free when the kernel places that thread, so a plugin
//! over its share runs its guest code there: it still runs whenever a core has nothing else
//! to do, and no longer delays anyone.
//!
//! Only its guest code: a thread in that class that is preempted while it holds a lock waits
//! for a free core before it can release it, and on a machine whose cores are all busy that
//! can be a long wait for the router, the sender or the kill switch behind the lock. So the
//! thread leaves the class whenever it enters host code (every import call, through wasmtime's
//! call hook, and everything between calls: its inbox, the failure policy), and host code
//! takes no lock in that class. Leaving needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least
//! 20 (`ulimit -e 20`, systemd's `LimitNICE=20`); a process without either does not use the
//! class at all ([`can_leave`]), and a plugin over its share only waits. Elsewhere than Linux
//! these calls do nothing.

/// Moves the calling thread to the background class; `Err` says why not. The thread's nice
/// value is kept for [`to_normal`].
pub fn to_background() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        let done = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle);
        // The crate sets the class, then nice 0: in a host started under `nice` the second
        // step is refused with the class already changed, which is all that matters here.
        match done {
            Ok(()) => Ok(()),
            Err(_) if in_background() => Ok(()),
            Err(e) => Err(format!("{e:?}")),
        }
    }
    #[cfg(not(target_os = "linux"))]
    Err("scheduling classes are a Linux feature".into())
}

/// Moves the calling thread back to the normal class at `nice` (its value before
/// [`to_background`]); `Err` when the process may not (see the module's note).
pub fn to_normal(nice: i32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        // The crate maps 0..=99 onto nice 19..=-20, 47 about nice 0; the exact value matters
        // not, since the saved nice value is set right after.
        let nice0 = ThreadPriority::Crossplatform(ThreadPriorityValue::try_from(47u8).map_err(|e| e.to_string())?);
        set_thread_priority_and_policy(thread_native_id(), nice0, other).map_err(|e| format!("{e:?}"))?;
        // Raising nice is always allowed; a negative one was allowed by the step above.
        rustix::process::setpriority_process(None, nice).map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        Ok(())
    }
}

/// What a plugin is charged (its CPU share, its per-call deadline) is the CPU its thread used,
/// not the time it waited for a core: a plugin in the background class on a busy machine waits
/// a lot and must not be punished for it. Started and read on the same thread.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    /// The thread's CPU time at the start (`None`: no per-thread clock here; wall time rules).
    cpu: Option<std::time::Duration>,
    wall: std::time::Instant,
}

impl Stopwatch {
    /// Starts on the calling thread.
    pub fn start() -> Self {
        Self { cpu: thread_cpu(), wall: std::time::Instant::now() }
    }

    /// The thread's CPU time at the start (`None` where there is no thread clock).
    pub fn cpu_base(&self) -> Option<std::time::Duration> {
        self.cpu
    }

    /// CPU time the thread used since the start (wall time where there is no thread clock).
    pub fn cpu(&self) -> std::time::Duration {
        self.cpu.zip(thread_cpu()).map_or_else(|| self.wall.elapsed(), |(at, now)| now.saturating_sub(at))
    }

    /// Wall time since the start.
    pub fn wall(&self) -> std::time::Duration {
        self.wall.elapsed()
    }
}

/// CPU time the calling thread has used; `None` where the platform has no per-thread clock.
pub fn thread_cpu() -> Option<std::time::Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(std::time::Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
    }
    #[cfg(not(unix))]
    None
}

/// Whether this process may move a thread out of the background class again (probed once, on
/// a thread of its own); without that, the class is not used.
pub fn can_leave() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        std::thread::Builder::new()
            .name("sched-probe".into())
            .spawn(|| {
                let before = nice();
                to_background().is_ok() && to_normal(before).is_ok()
            })
            .ok()
            .and_then(|probe| probe.join().ok())
            .unwrap_or(false)
    })
}

/// The calling thread's nice value (0 where unknown).
pub fn nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(None).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Whether the calling thread is in the background class.
pub fn in_background() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy};
        matches!(thread_schedule_policy(), Ok(ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)))
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_moves_to_the_background_class_and_back_where_allowed() {
        std::thread::spawn(|| {
            assert!(!in_background());
            let before = nice();
            to_background().expect("any thread may lower its own class");
            assert!(in_background());
            // Back only with CAP_SYS_NICE or RLIMIT_NICE >= 20; either way the answer is true.
            match to_normal(before) {
                Ok(()) => {
                    assert!(!in_background());
                    assert_eq!(nice(), before);
                }
                Err(_) => assert!(in_background()),
            }
        })
        .join()
        .expect("thread");
    }
}
