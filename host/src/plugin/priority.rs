//! The scheduling class of a plugin's thread.
//!
//! The CPU share ([`super::limits::CpuShare`]) bounds what a plugin takes on average, but a
//! plugin's batch runs to its end (up to the call deadline) on a core of its own: on a
//! two-core machine a neighbour's tick then waits for the kernel's next tick (4 ms) to get
//! that core back. A thread in Linux's `SCHED_IDLE` class is preempted as soon as a normal
//! thread wakes and its core counts as free when the kernel places that thread, so a plugin
//! over its share is moved there: it still runs whenever a core has nothing else to do, and
//! no longer delays anyone.
//!
//! Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 20 (`ulimit -e
//! 20`, systemd's `LimitNICE=`); without either, a plugin moved there stays until it is
//! unloaded. Elsewhere than Linux these calls do nothing.

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
        // The crate maps 0..=99 onto nice 19..=-20; 47 is nice 0 (checked by the test below).
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

/// CPU time the calling thread has used; `None` where the platform has no per-thread clock.
/// What a plugin is charged (its CPU share, its per-call deadline) is the CPU its thread
/// used, not the time it waited for a core: a plugin in the background class on a busy
/// machine waits a lot and must not be punished for it.
pub fn thread_cpu() -> Option<std::time::Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(std::time::Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
    }
    #[cfg(not(unix))]
    None
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
