//! The tunnel decapsulator for real servers whose kernel has no ipip driver: frames that
//! carry IP in IP (IPv4 protocol 4 or 41, IPv6 next header 4 or 41) lose their outer header
//! and go on to the kernel as the inner packet, as a `tunl0`/`ip6tnl0` device would hand
//! them over. Everything else passes untouched.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod wire;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action, helpers::bpf_xdp_adjust_head, macros::xdp, programs::XdpContext,
    };

    use crate::wire::{ETH_P_IP, ETH_P_IPV6, IPPROTO_IPIP, IPPROTO_IPV6, eth, ipv4, ipv6};

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
        let ethertype = u16::from_be_bytes(unsafe { *at::<[u8; 2]>(ctx, eth::TYPE)? });
        let (outer, protocol) = match ethertype {
            ETH_P_IP => {
                let first = unsafe { *at::<u8>(ctx, ipv4::VERSION_IHL)? };
                let frag = unsafe { *at::<[u8; 2]>(ctx, ipv4::FRAG)? };
                // A fragmented outer packet is left to the kernel to reassemble.
                if first >> 4 != 4 || (u16::from_be_bytes(frag) & ipv4::FRAGMENT_MASK) != 0 {
                    return None;
                }
                let ihl = (first & 0x0f) as usize;
                if ihl < 5 {
                    return None;
                }
                (ihl * 4, unsafe { *at::<u8>(ctx, ipv4::PROTOCOL)? })
            }
            ETH_P_IPV6 => (ipv6::LEN, unsafe { *at::<u8>(ctx, ipv6::NEXT_HEADER)? }),
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
        if at::<u8>(&ctx, eth::LEN + outer).is_none() {
            return xdp_action::XDP_PASS;
        }
        let Some(old) = at::<[u8; eth::TYPE]>(&ctx, eth::DST) else {
            return xdp_action::XDP_PASS;
        };
        let macs = unsafe { *old };
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, outer as i32) } != 0 {
            return xdp_action::XDP_PASS;
        }
        let Some(header) = at::<[u8; eth::LEN]>(&ctx, eth::DST) else {
            return xdp_action::XDP_DROP;
        };
        let header = unsafe { &mut *header };
        header[..eth::TYPE].copy_from_slice(&macs);
        header[eth::TYPE..].copy_from_slice(&inner.to_be_bytes());
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
