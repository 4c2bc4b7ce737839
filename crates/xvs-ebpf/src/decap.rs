//! The tunnel decapsulator for real servers whose kernel has no ipip driver: frames that
//! carry IP in IP (IPv4 protocol 4 or 41, IPv6 next header 4 or 41) lose their outer header
//! and go on to the kernel as the inner packet, as a `tunl0`/`ip6tnl0` device would hand
//! them over. Everything else passes untouched.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action, helpers::bpf_xdp_adjust_head, macros::xdp, programs::XdpContext,
    };

    const ETH_LEN: usize = 14;
    const ETH_P_IP: u16 = 0x0800;
    const ETH_P_IPV6: u16 = 0x86DD;
    const IPPROTO_IPIP: u8 = 4;
    const IPPROTO_IPV6: u8 = 41;

    #[inline(always)]
    fn at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
        let start = ctx.data();
        if start + offset + core::mem::size_of::<T>() > ctx.data_end() {
            return None;
        }
        Some((start + offset) as *mut T)
    }

    /// The outer header's length and the inner packet's ethertype, if this is a tunnel.
    #[inline(always)]
    fn tunnel(ctx: &XdpContext) -> Option<(usize, u16)> {
        let ethertype = u16::from_be_bytes(unsafe { *at::<[u8; 2]>(ctx, 12)? });
        let (outer, protocol) = match ethertype {
            ETH_P_IP => {
                let first = unsafe { *at::<u8>(ctx, ETH_LEN)? };
                let frag = unsafe { *at::<[u8; 2]>(ctx, ETH_LEN + 6)? };
                // A fragmented outer packet is left to the kernel to reassemble.
                if first >> 4 != 4 || (u16::from_be_bytes(frag) & 0x3fff) != 0 {
                    return None;
                }
                let ihl = (first & 0x0f) as usize;
                if ihl < 5 {
                    return None;
                }
                (ihl * 4, unsafe { *at::<u8>(ctx, ETH_LEN + 9)? })
            }
            ETH_P_IPV6 => (40, unsafe { *at::<u8>(ctx, ETH_LEN + 6)? }),
            _ => return None,
        };
        let inner = match protocol {
            IPPROTO_IPIP => ETH_P_IP,
            IPPROTO_IPV6 => ETH_P_IPV6,
            _ => return None,
        };
        Some((outer, inner))
    }

    #[xdp]
    pub fn xvs_decap(ctx: XdpContext) -> u32 {
        let Some((outer, inner)) = tunnel(&ctx) else {
            return xdp_action::XDP_PASS;
        };
        // Bounded for the verifier: an IPv4 header is at most 60 bytes.
        let outer = outer & 0x3f;
        // The inner packet must be there at least in part before the frame is cut.
        if at::<u8>(&ctx, ETH_LEN + outer).is_none() {
            return xdp_action::XDP_PASS;
        }
        let Some(eth) = at::<[u8; 12]>(&ctx, 0) else {
            return xdp_action::XDP_PASS;
        };
        let macs = unsafe { *eth };
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, outer as i32) } != 0 {
            return xdp_action::XDP_PASS;
        }
        let Some(eth) = at::<[u8; 14]>(&ctx, 0) else {
            return xdp_action::XDP_DROP;
        };
        let eth = unsafe { &mut *eth };
        eth[..12].copy_from_slice(&macs);
        eth[12..].copy_from_slice(&inner.to_be_bytes());
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
