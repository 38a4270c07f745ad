//! Native tracepoints as ftrace prints them.

use memchr::memmem;
use xskdbg_format::lex::{next_token, parse_dec};
use xskdbg_format::{KernelOp, Op};

/// `napi:napi_poll`: `napi poll on napi struct 0000.. for device eth0 work
/// 1 budget 64` (decimal).
pub(super) fn napi_poll(body: &[u8]) -> Op<'_> {
    let word_after = |w: &[u8]| -> Option<u64> {
        let p = memmem::find(body, w)?;
        let (tok, _) = next_token(&body[p + w.len()..])?;
        parse_dec(tok)
    };
    Op::Kernel(KernelOp::Poll {
        work: word_after(b" work "),
        budget: word_after(b" budget "),
    })
}
