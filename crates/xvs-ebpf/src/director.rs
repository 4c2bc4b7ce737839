//! The director: one XDP pass over every frame that reaches an interface of the director's
//! network namespace. At this stage it counts what it sees and passes everything to the
//! stack; forwarding arrives with the datapath issue.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action,
        macros::{map, xdp},
        maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
        programs::XdpContext,
    };
    use xvs_common::{
        Counters, DestKey, DestValue, LOOPBACK_INDEX, MAX_DESTS, MAX_SERVICES, MAX_STATS,
        NO_PREALLOC, ServiceKey, ServiceValue, counter, meta,
    };

    #[map(name = "XVS_COUNTERS")]
    static XVS_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

    #[map(name = "XVS_META")]
    static XVS_META: Array<u64> = Array::with_max_entries(meta::COUNT, 0);

    #[map(name = "XVS_SERVICES")]
    static XVS_SERVICES: HashMap<ServiceKey, ServiceValue> =
        HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

    #[map(name = "XVS_DESTS")]
    static XVS_DESTS: HashMap<DestKey, DestValue> =
        HashMap::with_max_entries(MAX_DESTS, NO_PREALLOC);

    #[map(name = "XVS_STATS")]
    static XVS_STATS: PerCpuHashMap<u32, Counters> =
        PerCpuHashMap::with_max_entries(MAX_STATS, NO_PREALLOC);

    /// References every table so that the program, which anchors the namespace's state,
    /// holds them all. (Forwarding, which reads them for real, arrives with the datapath.)
    #[inline(always)]
    fn hold_tables() {
        let key = ServiceKey::default();
        // SAFETY: lookups only; the values are not used.
        unsafe {
            let _ = XVS_SERVICES.get(&key);
            let _ = XVS_DESTS.get(&DestKey::default());
            let _ = XVS_STATS.get(&0);
        }
    }

    #[inline(always)]
    fn count(index: u32, amount: u64) {
        if let Some(slot) = XVS_COUNTERS.get_ptr_mut(index) {
            // Per-CPU slot: no other CPU writes it, a plain add is exact.
            unsafe { *slot += amount };
        }
    }

    #[xdp]
    pub fn xvs_director(ctx: XdpContext) -> u32 {
        // Keep the meta map referenced by the program so that it lives as long as the
        // program does (the program is what anchors the namespace's state).
        let _ = XVS_META.get(meta::LAYOUT_VERSION);
        // On lo the program only anchors the namespace's state: local traffic passes.
        if ctx.ingress_ifindex() == LOOPBACK_INDEX as usize {
            hold_tables();
            return xdp_action::XDP_PASS;
        }
        let len = (ctx.data_end() - ctx.data()) as u64;
        count(counter::RX_FRAMES, 1);
        count(counter::RX_BYTES, len);
        if len < 14 {
            count(counter::MALFORMED, 1);
        }
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
