//! Latency samples in bounded memory.
//!
//! The first [`EXACT_CAP`] samples are kept as they are, so small traces get
//! exact percentiles. Past that the samples move into a log-linear histogram
//! (64 sub-buckets per power of two, 3776 counters, 30 KiB): a percentile is
//! then the upper bound of its bucket, at most 1/64 (1.6%) above the true
//! value. Count, sum and max stay exact either way.

/// Samples kept exactly before switching to the histogram.
pub const EXACT_CAP: usize = 16384;
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// One latency distribution (one socket, one ring stage).
#[derive(Debug, Clone, Default)]
pub struct LatencyHist {
    exact: Vec<u64>,
    buckets: Option<Box<[u64]>>,
    count: u64,
    sum: u128,
    max: u64,
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

fn bucket_upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    let lower = (SUB + sub) << shift;
    lower + ((1u64 << shift) - 1)
}

impl LatencyHist {
    /// Adds one sample.
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
        match &mut self.buckets {
            Some(b) => b[bucket_of(v)] += 1,
            None => {
                self.exact.push(v);
                if self.exact.len() > EXACT_CAP {
                    self.spill();
                }
            }
        }
    }

    fn spill(&mut self) {
        let mut b = vec![0u64; BUCKETS].into_boxed_slice();
        for &v in &self.exact {
            b[bucket_of(v)] += 1;
        }
        self.exact = Vec::new();
        self.buckets = Some(b);
    }

    /// Adds another distribution's samples (sockets known under two names
    /// that turn out to be one).
    pub fn merge(&mut self, other: &LatencyHist) {
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        if self.buckets.is_none()
            && other.buckets.is_none()
            && self.exact.len() + other.exact.len() <= EXACT_CAP
        {
            self.exact.extend_from_slice(&other.exact);
            return;
        }
        if self.buckets.is_none() {
            self.spill();
        }
        let Some(b) = &mut self.buckets else { return };
        match &other.buckets {
            Some(ob) => b.iter_mut().zip(ob.iter()).for_each(|(x, y)| *x += y),
            None => other.exact.iter().for_each(|&v| b[bucket_of(v)] += 1),
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean, rounded down (0 when empty).
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            u64::try_from(self.sum / u128::from(self.count)).unwrap_or(u64::MAX)
        }
    }

    /// Whether percentiles are exact (no spill to the histogram yet).
    pub fn is_exact(&self) -> bool {
        self.buckets.is_none()
    }

    /// Nearest-rank percentile `q` in `0.0..=1.0` (`None` when empty): the
    /// smallest sample with at least `q` of the samples at or below it.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        match &self.buckets {
            None => {
                let mut v = self.exact.clone();
                let k = (rank - 1) as usize;
                let (_, nth, _) = v.select_nth_unstable(k);
                Some(*nth)
            }
            Some(b) => {
                let mut seen = 0u64;
                for (i, &n) in b.iter().enumerate() {
                    seen += n;
                    if seen >= rank {
                        return Some(bucket_upper(i).min(self.max));
                    }
                }
                Some(self.max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456_789,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = bucket_of(v);
            assert!(i < BUCKETS, "{v}");
            assert!(bucket_upper(i) >= v, "{v}");
            // Relative width at most 1/64.
            assert!(bucket_upper(i) - v <= v / 64, "{v} -> {}", bucket_upper(i));
        }
    }

    #[test]
    fn exact_percentiles() {
        let mut h = LatencyHist::default();
        for v in 1..=100u64 {
            h.record(v * 10);
        }
        assert!(h.is_exact());
        assert_eq!(h.quantile(0.5), Some(500));
        assert_eq!(h.quantile(0.99), Some(990));
        assert_eq!(h.quantile(1.0), Some(1000));
        assert_eq!(h.max(), 1000);
        assert_eq!(h.mean(), 505);
        assert_eq!(LatencyHist::default().quantile(0.5), None);
    }

    #[test]
    fn histogram_percentiles_within_bound() {
        let mut h = LatencyHist::default();
        let n = EXACT_CAP as u64 * 3;
        for v in 0..n {
            // A spread of values, not in order.
            h.record((v * 7919) % n + 1000);
        }
        assert!(!h.is_exact());
        assert_eq!(h.count(), n);
        let true_p50 = 1000 + n / 2 - 1;
        let p50 = h.quantile(0.5).unwrap();
        assert!(
            p50 >= true_p50 && p50 - true_p50 <= true_p50 / 64,
            "{p50} vs {true_p50}"
        );
        assert_eq!(h.max(), n - 1 + 1000);
    }

    #[test]
    fn merge_keeps_counts() {
        let mut a = LatencyHist::default();
        let mut b = LatencyHist::default();
        (0..10).for_each(|v| a.record(v));
        (10..20).for_each(|v| b.record(v));
        a.merge(&b);
        assert_eq!(a.count(), 20);
        assert_eq!(a.max(), 19);
        assert_eq!(a.quantile(0.5), Some(9));
        let mut big = LatencyHist::default();
        (0..EXACT_CAP as u64 + 10).for_each(|v| big.record(v));
        a.merge(&big);
        assert_eq!(a.count(), 20 + EXACT_CAP as u64 + 10);
        assert!(!a.is_exact());
    }
}
