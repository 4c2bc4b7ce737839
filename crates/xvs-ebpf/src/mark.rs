//! The fwmark loop's egress program (TC, on `xvsfw0`): a packet the kernel routed into the
//! loop because the operator's netfilter rules marked it leaves with its mark written into
//! its destination MAC, where the director on the loop's other end (`xvsfw1`) reads it.
//! XDP runs before netfilter and has no mark of its own to read.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};
    use xvs_common::FWMARK_MAC_PREFIX;

    #[classifier]
    pub fn xvs_mark(ctx: TcContext) -> i32 {
        let mark = unsafe { (*ctx.skb.skb).mark };
        let [a, b, c, d] = mark.to_be_bytes();
        let mac = [FWMARK_MAC_PREFIX[0], FWMARK_MAC_PREFIX[1], a, b, c, d];
        // A frame too short to hold a MAC goes as it is: the director passes it.
        let _ = ctx.store(0, &mac, 0);
        TC_ACT_OK
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
