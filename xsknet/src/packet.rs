//! Pure building and checking of test frames: Ethernet + IPv4 + UDP or a
//! TCP-shaped header, with a payload that carries a sequence number and a
//! pattern derived from it, so a receiver can tell a correct frame from a
//! stale, truncated or foreign one.
//!
//! Payload layout (after the L4 header): `XSKN` magic, u16 flow id (big
//! endian), u16 zero, u64 sequence number (big endian), then byte `i` of the
//! rest is `seq as u8 + i as u8` (wrapping).

use std::net::Ipv4Addr;

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const TCP_LEN: usize = 20;
const MAGIC: &[u8; 4] = b"XSKN";
/// Magic, flow id, padding, sequence number.
const PAYLOAD_HEADER: usize = 16;
/// Largest frame for a 1500-byte MTU.
pub const MAX_FRAME_LEN: usize = 1514;

/// The transport header a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// UDP.
    Udp,
    /// A TCP header (ACK|PSH, fixed seq/ack numbers); no connection behind it.
    Tcp,
}

impl L4 {
    fn header_len(self) -> usize {
        match self {
            L4::Udp => UDP_LEN,
            L4::Tcp => TCP_LEN,
        }
    }

    fn proto(self) -> u8 {
        match self {
            L4::Udp => 17,
            L4::Tcp => 6,
        }
    }
}

/// Addresses and ports of a flow of test frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP-shaped.
    pub l4: L4,
    /// Flow id written into every payload.
    pub flow: u16,
}

/// What a checked frame contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Transport.
    pub l4: L4,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Flow id from the payload.
    pub flow: u16,
    /// Sequence number from the payload.
    pub seq: u64,
    /// Frame length in bytes.
    pub len: usize,
}

/// Why a frame is not an intact test frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Requested or received length is out of range.
    #[error("frame length {len} outside {min}..={max}")]
    Length {
        /// The length.
        len: usize,
        /// Smallest valid length for this transport.
        min: usize,
        /// Largest valid length.
        max: usize,
    },
    /// Not IPv4/UDP/TCP.
    #[error("not an IPv4 UDP/TCP frame ({0})")]
    NotTest(&'static str),
    /// The IPv4 total length disagrees with the frame length (the seed
    /// story's "IPv4 total length exceeds packet length").
    #[error("IPv4 total length {ip_total} but frame carries {available} bytes after Ethernet")]
    IpLength {
        /// Total length from the IP header.
        ip_total: usize,
        /// Bytes actually present after the Ethernet header.
        available: usize,
    },
    /// A checksum does not match.
    #[error("{0} checksum mismatch")]
    Checksum(&'static str),
    /// The payload lacks the magic.
    #[error("payload magic missing")]
    Magic,
    /// The pattern byte at `offset` is wrong.
    #[error("payload byte {offset} is {got:#04x}, expected {want:#04x} for seq {seq}")]
    Pattern {
        /// Offset into the frame.
        offset: usize,
        /// Byte found.
        got: u8,
        /// Byte expected.
        want: u8,
        /// Sequence number the header claimed.
        seq: u64,
    },
}

/// Smallest frame `build_frame` accepts for `l4`.
pub fn min_frame_len(l4: L4) -> usize {
    ETH_LEN + IP_LEN + l4.header_len() + PAYLOAD_HEADER
}

/// Writes frame `seq` of `spec`, exactly `len` bytes long, into `buf`
/// (cleared first).
pub fn build_frame(
    spec: &FrameSpec,
    seq: u64,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let min = min_frame_len(spec.l4);
    if !(min..=MAX_FRAME_LEN).contains(&len) {
        return Err(FrameError::Length {
            len,
            min,
            max: MAX_FRAME_LEN,
        });
    }
    buf.clear();
    buf.resize(len, 0);
    buf[0..6].copy_from_slice(&spec.dst_mac);
    buf[6..12].copy_from_slice(&spec.src_mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());

    let ip_total = (len - ETH_LEN) as u16; // len <= 1514 fits
    let ip = &mut buf[ETH_LEN..ETH_LEN + IP_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = spec.l4.proto();
    ip[12..16].copy_from_slice(&spec.src_ip.octets());
    ip[16..20].copy_from_slice(&spec.dst_ip.octets());
    let sum = checksum(&[ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let l4_off = ETH_LEN + IP_LEN;
    let pay_off = l4_off + spec.l4.header_len();
    let l4_len = len - l4_off;
    {
        let h = &mut buf[l4_off..pay_off];
        h[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
        match spec.l4 {
            L4::Udp => h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes()),
            L4::Tcp => {
                h[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
                h[8..12].copy_from_slice(&1u32.to_be_bytes());
                h[12] = 5 << 4; // data offset: 5 words
                h[13] = 0x18; // PSH|ACK
                h[14..16].copy_from_slice(&65535u16.to_be_bytes());
            }
        }
    }
    let p = &mut buf[pay_off..];
    p[0..4].copy_from_slice(MAGIC);
    p[4..6].copy_from_slice(&spec.flow.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[PAYLOAD_HEADER..].iter_mut().enumerate() {
        *b = pattern(seq, i);
    }
    let mut sum = l4_checksum(spec.src_ip, spec.dst_ip, spec.l4, &buf[l4_off..]);
    if spec.l4 == L4::Udp && sum == 0 {
        sum = 0xffff; // UDP's 0 means "no checksum"; 0xffff is the same value
    }
    let at = l4_off + if spec.l4 == L4::Udp { 6 } else { 16 };
    buf[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_add(i as u8)
}

/// Checks that `frame` is an intact test frame and says which one it is.
pub fn check_frame(frame: &[u8]) -> Result<FrameInfo, FrameError> {
    let len = frame.len();
    if len < ETH_LEN + IP_LEN {
        return Err(FrameError::Length {
            len,
            min: min_frame_len(L4::Udp),
            max: MAX_FRAME_LEN,
        });
    }
    if frame[12..14] != [0x08, 0x00] {
        return Err(FrameError::NotTest("ethertype is not IPv4"));
    }
    let ip = &frame[ETH_LEN..ETH_LEN + IP_LEN];
    if ip[0] != 0x45 {
        return Err(FrameError::NotTest(
            "IPv4 header with options or wrong version",
        ));
    }
    let l4 = match ip[9] {
        17 => L4::Udp,
        6 => L4::Tcp,
        _ => return Err(FrameError::NotTest("protocol is neither UDP nor TCP")),
    };
    let min = min_frame_len(l4);
    if !(min..=MAX_FRAME_LEN).contains(&len) {
        return Err(FrameError::Length {
            len,
            min,
            max: MAX_FRAME_LEN,
        });
    }
    let ip_total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip_total != len - ETH_LEN {
        return Err(FrameError::IpLength {
            ip_total,
            available: len - ETH_LEN,
        });
    }
    if checksum(&[ip]) != 0 {
        return Err(FrameError::Checksum("IPv4"));
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4_off = ETH_LEN + IP_LEN;
    if l4_checksum(src_ip, dst_ip, l4, &frame[l4_off..]) != 0 {
        return Err(FrameError::Checksum(if l4 == L4::Udp {
            "UDP"
        } else {
            "TCP"
        }));
    }
    let h = &frame[l4_off..];
    let src_port = u16::from_be_bytes([h[0], h[1]]);
    let dst_port = u16::from_be_bytes([h[2], h[3]]);
    let pay_off = l4_off + l4.header_len();
    let p = &frame[pay_off..];
    if &p[0..4] != MAGIC {
        return Err(FrameError::Magic);
    }
    let flow = u16::from_be_bytes([p[4], p[5]]);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&p[8..16]);
    let seq = u64::from_be_bytes(seq_bytes);
    for (i, &got) in p[PAYLOAD_HEADER..].iter().enumerate() {
        let want = pattern(seq, i);
        if got != want {
            return Err(FrameError::Pattern {
                offset: pay_off + PAYLOAD_HEADER + i,
                got,
                want,
                seq,
            });
        }
    }
    Ok(FrameInfo {
        l4,
        src_port,
        dst_port,
        flow,
        seq,
        len,
    })
}

/// Internet checksum over the concatenation of `parts` (each of even length
/// except possibly the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// UDP/TCP checksum with the IPv4 pseudo-header. Computing it over a segment
/// whose checksum field is filled yields 0 when the checksum is right.
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, l4: L4, segment: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = l4.proto();
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    checksum(&[&pseudo, segment])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(l4: L4) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 0, 0, 2),
            src_port: 40000,
            dst_port: 9000,
            l4,
            flow: 7,
        }
    }

    #[test]
    fn round_trips_every_length_and_transport() {
        let mut buf = Vec::new();
        for l4 in [L4::Udp, L4::Tcp] {
            for len in [
                min_frame_len(l4),
                60,
                70,
                71,
                128,
                1000,
                1513,
                MAX_FRAME_LEN,
            ] {
                if len < min_frame_len(l4) {
                    continue;
                }
                for seq in [0u64, 1, 255, 256, u64::MAX] {
                    build_frame(&spec(l4), seq, len, &mut buf).unwrap();
                    assert_eq!(buf.len(), len);
                    let info = check_frame(&buf).unwrap();
                    assert_eq!(
                        info,
                        FrameInfo {
                            l4,
                            src_port: 40000,
                            dst_port: 9000,
                            flow: 7,
                            seq,
                            len
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut buf = Vec::new();
        assert!(matches!(
            build_frame(&spec(L4::Udp), 0, 10, &mut buf),
            Err(FrameError::Length { .. })
        ));
        assert!(build_frame(&spec(L4::Tcp), 0, MAX_FRAME_LEN + 1, &mut buf).is_err());
        assert!(check_frame(&[0u8; 5]).is_err());
    }

    #[test]
    fn detects_truncation_corruption_and_stale_frames() {
        let mut buf = Vec::new();
        build_frame(&spec(L4::Tcp), 42, 200, &mut buf).unwrap();
        // Truncated, like the seed's frames: IP total length exceeds the frame.
        assert!(matches!(
            check_frame(&buf[..150]),
            Err(FrameError::IpLength { .. })
        ));
        // One payload byte flipped: the checksum catches it first.
        let mut bad = buf.clone();
        bad[180] ^= 0xff;
        assert_eq!(check_frame(&bad), Err(FrameError::Checksum("TCP")));
        // Another frame's bytes in this frame's place.
        let mut other = Vec::new();
        build_frame(&spec(L4::Tcp), 43, 200, &mut other).unwrap();
        assert_eq!(check_frame(&other).unwrap().seq, 43);
        // IP header damage.
        let mut bad_ip = buf.clone();
        bad_ip[ETH_LEN + 8] = 1;
        assert_eq!(check_frame(&bad_ip), Err(FrameError::Checksum("IPv4")));
        // Not IPv4 at all.
        let mut arp = buf.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(matches!(check_frame(&arp), Err(FrameError::NotTest(_))));
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example words sum to 0xddf2; checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
    }
}
