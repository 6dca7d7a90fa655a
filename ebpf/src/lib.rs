//! Osprey's kernel side: the C XDP programs under `src/*.bpf.c` (added by the
//! kernel-path work) and `include/osprey_kern_user.h`, the one header whose
//! definitions both the kernel and userspace use.
//!
//! [`consts`] is generated at build time from the header's `#define OSPREY_*`
//! lines; nothing in Rust restates those values.

/// Constants generated from `include/osprey_kern_user.h` (without the `OSPREY_` prefix).
pub mod consts {
    include!(concat!(env!("OUT_DIR"), "/kern_user_consts.rs"));
}

#[cfg(test)]
mod tests {
    use super::consts;

    #[test]
    fn header_constants_are_generated() {
        assert_eq!(consts::FLOW_IDLE_TIMEOUT_SECS, 60);
        assert_eq!(consts::TCP_SYN, 0x02);
        assert_eq!(consts::END_EVICTED, 6);
    }
}
