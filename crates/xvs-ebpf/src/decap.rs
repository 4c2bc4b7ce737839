//! The tunnel decapsulator for real servers whose kernel has no ipip driver: frames that
//! carry IP in IP (IPv4 protocol 4 or 41, IPv6 next header 4 or 41), IP in GRE (protocol
//! 47, no key or sequence number) or, when a GUE port is set, IP in GUE (UDP to that port)
//! lose their outer headers and go on to the kernel as the inner packet, as a
//! `tunl0`/`ip6tnl0`, `gre0` or `fou` device would hand them over. Everything else passes
//! untouched.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod wire;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action,
        helpers::bpf_xdp_adjust_head,
        macros::{map, xdp},
        maps::Array,
        programs::XdpContext,
    };

    use crate::wire::{
        ETH_P_IP, ETH_P_IPV6, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, eth, gre, gue,
        ipv4, ipv6, udp,
    };

    /// The UDP port GUE arrives on, network order; 0: GUE is not decapsulated. Written
    /// by `xvs-decap IFACE --gue-port N`.
    #[map(name = "XVS_DECAP_GUE")]
    static XVS_DECAP_GUE: Array<u16> = Array::with_max_entries(1, 0);

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
        // Bounded for the verifier: an IPv4 header is at most 60 bytes.
        let outer = outer & 0x3f;
        match protocol {
            IPPROTO_IPIP => Some((outer, ETH_P_IP)),
            IPPROTO_IPV6 => Some((outer, ETH_P_IPV6)),
            IPPROTO_GRE => {
                let header = unsafe { *at::<[u8; gre::LEN]>(ctx, eth::LEN + outer)? };
                let other = gre::FLAG_ROUTING | gre::FLAG_KEY | gre::FLAG_SEQUENCE;
                if header[0] & other != 0 || header[1] & gre::VERSION_MASK != 0 {
                    return None;
                }
                let len = if header[0] & gre::FLAG_CHECKSUM != 0 {
                    gre::LEN + gre::CHECKSUM_LEN
                } else {
                    gre::LEN
                };
                let inner = u16::from_be_bytes([header[gre::PROTOCOL], header[gre::PROTOCOL + 1]]);
                if inner != ETH_P_IP && inner != ETH_P_IPV6 {
                    return None;
                }
                Some((outer + len, inner))
            }
            IPPROTO_UDP => {
                let port = XVS_DECAP_GUE.get(0).copied().unwrap_or(0);
                let udp = unsafe { *at::<[u8; udp::LEN]>(ctx, eth::LEN + outer)? };
                if port == 0
                    || u16::from_ne_bytes([udp[udp::DST_PORT], udp[udp::DST_PORT + 1]]) != port
                {
                    return None;
                }
                let header = unsafe { *at::<[u8; gue::LEN]>(ctx, eth::LEN + outer + udp::LEN)? };
                match header[0] >> gue::VERSION_SHIFT {
                    // Version 0: the header (with its options) names what follows; control
                    // messages are the kernel's.
                    0 if header[0] & gue::CONTROL == 0 => {
                        let len = gue::LEN + 4 * (header[0] & gue::HLEN_MASK) as usize;
                        let inner = match header[gue::PROTOCOL] {
                            IPPROTO_IPIP => ETH_P_IP,
                            IPPROTO_IPV6 => ETH_P_IPV6,
                            _ => return None,
                        };
                        Some((outer + udp::LEN + len, inner))
                    }
                    // Version 1: the inner IP header right after UDP.
                    1 => match header[0] >> 4 {
                        4 => Some((outer + udp::LEN, ETH_P_IP)),
                        6 => Some((outer + udp::LEN, ETH_P_IPV6)),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }

    #[xdp]
    pub fn xvs_decap(ctx: XdpContext) -> u32 {
        let Some((outer, inner)) = tunnel(&ctx) else {
            return xdp_action::XDP_PASS;
        };
        // Bounded for the verifier: outer IPv4 (at most 60 bytes), UDP and GUE with
        // options (at most 128 bytes), or GRE.
        let outer = outer & 0xff;
        // The MACs are read before the check at a variable offset below: the compiler
        // would otherwise drop their own bounds check as implied by it, which the
        // verifier cannot follow.
        let Some(old) = at::<[u8; eth::TYPE]>(&ctx, eth::DST) else {
            return xdp_action::XDP_PASS;
        };
        let macs = unsafe { core::ptr::read_volatile(old) };
        // The inner packet must be there at least in part before the frame is cut.
        if at::<u8>(&ctx, eth::LEN + outer).is_none() {
            return xdp_action::XDP_PASS;
        }
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
