//! Sampling: turn one step's logits into one token id.
//!
//! Design. A [`Sampler`] owns every buffer it needs (candidate list, penalty bitset, repetition
//! window), all allocated once in [`Sampler::new`] for a given vocabulary size, so the token loop
//! never allocates. One call, [`Sampler::sample`], applies in order:
//!
//! 1. the **logit mask** ([`TokenMask`], a bitset over the vocabulary): tokens whose bit is clear
//!    are removed. Grammar-constrained decoding fills the mask (see `grammar`), but any caller
//!    can (e.g. to ban a token);
//! 2. the **repetition penalty** over the last `repetition_window` recorded tokens, as in
//!    llama.cpp and Hugging Face (`logit / p` when positive, `logit * p` when negative), applied
//!    once per distinct token;
//! 3. **greedy** (temperature `<= 0`): the largest logit, lowest id on ties; otherwise
//!    **temperature**, **top-k** (partial selection, not a full sort, when k is small), **top-p**
//!    (nucleus over the sorted candidates) and a draw from a seeded [`Pcg32`].
//!
//! Everything is deterministic for a given seed: the same logits and seed give the same tokens on
//! the host and in the kernel (no floating-point library calls; [`exp_nonpositive`] is written
//! here because `core` has no `exp`).
//!
//! NaN logits are treated as `-inf` (never chosen): a numeric fault in the forward pass must not
//! turn into a panic or an out-of-range id. If the mask leaves nothing to choose from,
//! [`SampleError::NoAllowedToken`] says so instead of picking a banned token.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Longest repetition window a sampler keeps. llama.cpp defaults to 64 and few users go past a
/// few hundred; 4096 bounds the ring buffer (16 KiB) and the per-token penalty loop whatever a
/// console user types.
pub const MAX_REPETITION_WINDOW: usize = 4096;

/// A bitset over the vocabulary: bit `i` set means token `i` may be sampled.
///
/// This is the logit-mask hook of the sampler; the grammar engine writes it
/// (`GrammarState::mask`) and [`Sampler::sample`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMask {
    words: Vec<u64>,
    len: usize,
}

impl TokenMask {
    /// A mask over `len` tokens with every token allowed.
    pub fn new_allow_all(len: usize) -> Self {
        let mut mask = Self {
            words: vec![0; len.div_ceil(64)],
            len,
        };
        mask.allow_all();
        mask
    }

    /// A mask over `len` tokens with every token blocked.
    pub fn new_block_all(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Number of tokens the mask covers (the vocabulary size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the mask covers no token at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Allow every token.
    pub fn allow_all(&mut self) {
        self.words.fill(u64::MAX);
        let tail = self.len % 64;
        if tail != 0 {
            if let Some(last) = self.words.last_mut() {
                *last = (1u64 << tail) - 1;
            }
        }
    }

    /// Block every token.
    pub fn block_all(&mut self) {
        self.words.fill(0);
    }

    /// Allow token `id`; ids outside the vocabulary are ignored.
    pub fn allow(&mut self, id: u32) {
        let id = id as usize;
        if id < self.len {
            self.words[id / 64] |= 1 << (id % 64);
        }
    }

    /// Block token `id`; ids outside the vocabulary are ignored.
    pub fn block(&mut self, id: u32) {
        let id = id as usize;
        if id < self.len {
            self.words[id / 64] &= !(1 << (id % 64));
        }
    }

    /// Whether token `id` is allowed (false outside the vocabulary).
    pub fn is_allowed(&self, id: u32) -> bool {
        let id = id as usize;
        id < self.len && self.words[id / 64] & (1 << (id % 64)) != 0
    }

    /// Number of allowed tokens.
    pub fn count_allowed(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Iterate over the allowed token ids in increasing order.
    pub fn iter_allowed(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(word_index, &word)| {
                let mut bits = word;
                core::iter::from_fn(move || {
                    if bits == 0 {
                        return None;
                    }
                    let bit = bits.trailing_zeros();
                    bits &= bits - 1;
                    Some((word_index * 64) as u32 + bit)
                })
            })
    }
}

/// PCG32 (XSH-RR, O'Neill 2014): a small, fast, statistically good, deterministic generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcg32 {
    state: u64,
    increment: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6_364_136_223_846_793_005;

    /// Seed the generator; equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        let mut rng = Self {
            state: 0,
            increment: (0xda3e_39cb_94b9_5bdb_u64 << 1) | 1,
        };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(self.increment);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rotation = (old >> 59) as u32;
        xorshifted.rotate_right(rotation)
    }

    /// A uniform float in `[0, 1)` with 24 bits of precision.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}

/// `e^x` for `x <= 0` (the only range softmax needs after subtracting the maximum), relative
/// error below 2e-7; returns 0 below -87 (where `f32` underflows) and for NaN.
pub fn exp_nonpositive(x: f32) -> f32 {
    if x.is_nan() || x < -87.0 {
        return 0.0;
    }
    if x >= 0.0 {
        return 1.0;
    }
    // x = k*ln2 + r with |r| <= ln2/2; e^x = 2^k * e^r.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const INV_LN2: f32 = core::f32::consts::LOG2_E;
    let k_float = x * INV_LN2 - 0.5;
    let k = k_float as i32; // truncation toward zero of a negative value: rounds to nearest
    let k_float = k as f32;
    let r = (x - k_float * LN2_HI) - k_float * LN2_LO;
    // Taylor polynomial to degree 7 on |r| <= 0.35: error far below f32 epsilon.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^k for k in [-126, 0] by building the exponent bits directly.
    let exponent = k + 127;
    if exponent <= 0 {
        // Subnormal result: scale in two steps.
        let half = f32::from_bits(((exponent + 64) as u32) << 23);
        return p * half * f32::from_bits(((127 - 64) as u32) << 23);
    }
    p * f32::from_bits((exponent as u32) << 23)
}

/// Settings of a [`Sampler`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` (or NaN) means greedy.
    pub temperature: f32,
    /// Keep only the `top_k` largest logits; 0 means no limit.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability sums to at least `top_p`; `>= 1` means
    /// no limit.
    pub top_p: f32,
    /// Repetition penalty factor (1.0 = none); values below 1 are treated as 1.
    pub repetition_penalty: f32,
    /// How many of the most recent recorded tokens the penalty looks at (capped at
    /// [`MAX_REPETITION_WINDOW`]).
    pub repetition_window: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl SamplerConfig {
    /// Greedy decoding, no penalty: what golden tests against candle use.
    pub const GREEDY: Self = Self {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        repetition_penalty: 1.0,
        repetition_window: 0,
        seed: 0,
    };
}

impl Default for SamplerConfig {
    /// The console's default: temperature 0.7, top-k 40, top-p 0.9, penalty 1.1 over 64 tokens
    /// (llama.cpp's long-standing defaults, which suit small instruct models).
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            repetition_penalty: 1.1,
            repetition_window: 64,
            seed: 0x5eed,
        }
    }
}

/// Why a token could not be sampled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleError {
    /// The logits slice is not as long as the vocabulary the sampler was built for.
    LogitsLength { expected: usize, found: usize },
    /// The mask covers a different number of tokens than the vocabulary.
    MaskLength { expected: usize, found: usize },
    /// Every token is masked out or has a `-inf`/NaN logit.
    NoAllowedToken,
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LogitsLength { expected, found } => {
                write!(f, "logits have {found} entries, vocabulary has {expected}")
            }
            Self::MaskLength { expected, found } => {
                write!(f, "mask covers {found} tokens, vocabulary has {expected}")
            }
            Self::NoAllowedToken => write!(f, "no token is allowed by the mask"),
        }
    }
}

/// A candidate token during sampling.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u32,
    value: f32,
}

/// Chooses tokens from logits; owns all its buffers (no allocation per token).
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    vocab_size: usize,
    rng: Pcg32,
    candidates: Vec<Candidate>,
    /// Ring buffer of the most recent recorded tokens.
    history: Vec<u32>,
    history_next: usize,
    history_len: usize,
    /// Tokens already penalised in this step (so repeats are penalised once).
    penalised: TokenMask,
}

impl Sampler {
    /// A sampler for a vocabulary of `vocab_size` tokens.
    pub fn new(vocab_size: usize, config: SamplerConfig) -> Self {
        let window = config.repetition_window.min(MAX_REPETITION_WINDOW);
        Self {
            config: SamplerConfig {
                repetition_window: window,
                ..config
            },
            vocab_size,
            rng: Pcg32::new(config.seed),
            candidates: Vec::with_capacity(vocab_size),
            history: vec![0; window],
            history_next: 0,
            history_len: 0,
            penalised: TokenMask::new_block_all(vocab_size),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Forget the repetition history and reseed the generator.
    pub fn reset(&mut self, seed: u64) {
        self.rng = Pcg32::new(seed);
        self.config.seed = seed;
        self.history_next = 0;
        self.history_len = 0;
    }

    /// Record a token in the repetition window (prompt tokens too, if they should be penalised).
    /// [`Sampler::sample`] records the tokens it returns.
    pub fn record(&mut self, token: u32) {
        if self.history.is_empty() {
            return;
        }
        self.history[self.history_next] = token;
        self.history_next = (self.history_next + 1) % self.history.len();
        self.history_len = (self.history_len + 1).min(self.history.len());
    }

    /// Choose the next token. `logits` is modified (penalty, temperature) and must hold one value
    /// per vocabulary entry; `mask`, when given, removes the tokens whose bit is clear. Equal to
    /// [`Sampler::apply_penalty`], then [`Sampler::choose`], then [`Sampler::record`].
    pub fn sample(
        &mut self,
        logits: &mut [f32],
        mask: Option<&TokenMask>,
    ) -> Result<u32, SampleError> {
        self.apply_penalty(logits)?;
        let token = self.choose(logits, mask)?;
        self.record(token);
        Ok(token)
    }

    /// Apply the repetition penalty to `logits` (once per step).
    pub fn apply_penalty(&mut self, logits: &mut [f32]) -> Result<(), SampleError> {
        if logits.len() != self.vocab_size {
            return Err(SampleError::LogitsLength {
                expected: self.vocab_size,
                found: logits.len(),
            });
        }
        self.apply_repetition_penalty(logits);
        Ok(())
    }

    /// Pick a token from (already penalised) logits without recording it: greedy, or a draw
    /// after temperature, top-k and top-p. May be called again in the same step (e.g. with a
    /// mask after an unmasked pick was rejected by a grammar).
    pub fn choose(&mut self, logits: &[f32], mask: Option<&TokenMask>) -> Result<u32, SampleError> {
        if logits.len() != self.vocab_size {
            return Err(SampleError::LogitsLength {
                expected: self.vocab_size,
                found: logits.len(),
            });
        }
        if let Some(mask) = mask {
            if mask.len() != self.vocab_size {
                return Err(SampleError::MaskLength {
                    expected: self.vocab_size,
                    found: mask.len(),
                });
            }
        }
        if self.config.temperature > 0.0 {
            self.sample_random(logits, mask)
        } else {
            greedy(logits, mask)
        }
    }

    fn apply_repetition_penalty(&mut self, logits: &mut [f32]) {
        let penalty = self.config.repetition_penalty;
        // `penalty <= 1.0` is false for NaN, so test the positive case: NaN means no penalty.
        let penalise = penalty > 1.0;
        if !penalise || self.history_len == 0 {
            return;
        }
        for index in 0..self.history_len {
            let token = self.history[index];
            if (token as usize) >= logits.len() || self.penalised.is_allowed(token) {
                continue;
            }
            self.penalised.allow(token);
            let logit = &mut logits[token as usize];
            *logit = if *logit > 0.0 {
                *logit / penalty
            } else {
                *logit * penalty
            };
        }
        for index in 0..self.history_len {
            self.penalised.block(self.history[index]);
        }
    }

    fn sample_random(
        &mut self,
        logits: &[f32],
        mask: Option<&TokenMask>,
    ) -> Result<u32, SampleError> {
        let inverse_temperature = 1.0 / self.config.temperature;
        if !inverse_temperature.is_finite() {
            // A temperature so small that logits would overflow: that is greedy.
            return greedy(logits, mask);
        }
        self.candidates.clear();
        for (id, &logit) in logits.iter().enumerate() {
            let allowed = mask.is_none_or(|m| m.is_allowed(id as u32));
            if allowed && logit.is_finite() {
                self.candidates.push(Candidate {
                    id: id as u32,
                    value: logit * inverse_temperature,
                });
            }
        }
        if self.candidates.is_empty() {
            return Err(SampleError::NoAllowedToken);
        }
        let descending =
            |a: &Candidate, b: &Candidate| b.value.total_cmp(&a.value).then(a.id.cmp(&b.id));
        let top_k = self.config.top_k;
        if top_k > 0 && top_k < self.candidates.len() {
            self.candidates
                .select_nth_unstable_by(top_k - 1, descending);
            self.candidates.truncate(top_k);
        }
        self.candidates.sort_unstable_by(descending);
        // Softmax in place: value becomes an unnormalised probability.
        let max = self.candidates[0].value;
        let mut total = 0.0f32;
        for candidate in self.candidates.iter_mut() {
            candidate.value = exp_nonpositive(candidate.value - max);
            total += candidate.value;
        }
        // Nucleus: keep the shortest prefix whose mass reaches top_p.
        let top_p = self.config.top_p;
        if top_p < 1.0 {
            let threshold = top_p.max(0.0) * total;
            let mut cumulative = 0.0f32;
            let mut keep = self.candidates.len();
            for (index, candidate) in self.candidates.iter().enumerate() {
                cumulative += candidate.value;
                if cumulative >= threshold {
                    keep = index + 1;
                    break;
                }
            }
            self.candidates.truncate(keep);
            total = self.candidates.iter().map(|c| c.value).sum();
        }
        let target = self.rng.next_f32() * total;
        let mut cumulative = 0.0f32;
        for candidate in self.candidates.iter() {
            cumulative += candidate.value;
            if target < cumulative {
                return Ok(candidate.id);
            }
        }
        // Rounding left the target at the very end: the last kept candidate.
        Ok(self.candidates[self.candidates.len() - 1].id)
    }
}

/// The allowed token with the largest logit (lowest id on ties); NaN and `-inf` never win.
pub fn greedy(logits: &[f32], mask: Option<&TokenMask>) -> Result<u32, SampleError> {
    let mut best: Option<(u32, f32)> = None;
    for (id, &logit) in logits.iter().enumerate() {
        if logit.is_nan() || logit == f32::NEG_INFINITY {
            continue;
        }
        if let Some(mask) = mask {
            if !mask.is_allowed(id as u32) {
                continue;
            }
        }
        if best.is_none_or(|(_, value)| logit > value) {
            best = Some((id as u32, logit));
        }
    }
    best.map(|(id, _)| id).ok_or(SampleError::NoAllowedToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(temperature: f32, top_k: usize, top_p: f32) -> SamplerConfig {
        SamplerConfig {
            temperature,
            top_k,
            top_p,
            repetition_penalty: 1.0,
            repetition_window: 0,
            seed: 42,
        }
    }

    #[test]
    fn exp_matches_std_over_its_range() {
        let mut x = -90.0f32;
        while x <= 0.0 {
            let expected = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            if expected > 1e-37 {
                assert!(
                    ((got - expected) / expected).abs() < 3e-7,
                    "x={x} got={got} want={expected}"
                );
            } else {
                assert!(got < 1e-36, "x={x} got={got}");
            }
            x += 0.0137;
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NAN), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn pcg32_is_deterministic_and_uniform() {
        let mut a = Pcg32::new(7);
        let mut b = Pcg32::new(7);
        let mut c = Pcg32::new(8);
        let first: Vec<u32> = (0..8).map(|_| a.next_u32()).collect();
        let second: Vec<u32> = (0..8).map(|_| b.next_u32()).collect();
        let other: Vec<u32> = (0..8).map(|_| c.next_u32()).collect();
        assert_eq!(first, second);
        assert_ne!(first, other);
        // Uniformity sanity: the mean of many draws is near 0.5.
        let mean: f32 = (0..100_000).map(|_| a.next_f32()).sum::<f32>() / 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn token_mask_sets_counts_and_iterates() {
        let mut mask = TokenMask::new_block_all(130);
        assert_eq!(mask.count_allowed(), 0);
        for id in [0, 63, 64, 129, 500] {
            mask.allow(id);
        }
        assert_eq!(mask.count_allowed(), 4);
        assert_eq!(
            mask.iter_allowed().collect::<Vec<_>>(),
            vec![0, 63, 64, 129]
        );
        mask.block(63);
        assert!(!mask.is_allowed(63));
        assert!(!mask.is_allowed(500));
        mask.allow_all();
        assert_eq!(mask.count_allowed(), 130);
        assert_eq!(TokenMask::new_allow_all(64).count_allowed(), 64);
    }

    #[test]
    fn greedy_picks_largest_allowed_and_skips_nan() {
        let logits = [1.0, f32::NAN, 3.0, 3.0, -1.0];
        assert_eq!(greedy(&logits, None), Ok(2));
        let mut mask = TokenMask::new_allow_all(5);
        mask.block(2);
        mask.block(3);
        assert_eq!(greedy(&logits, Some(&mask)), Ok(0));
        mask.block_all();
        assert_eq!(
            greedy(&logits, Some(&mask)),
            Err(SampleError::NoAllowedToken)
        );
        let mut sampler = Sampler::new(5, SamplerConfig::GREEDY);
        let mut copy = logits;
        assert_eq!(sampler.sample(&mut copy, None), Ok(2));
    }

    #[test]
    fn length_mismatches_are_errors() {
        let mut sampler = Sampler::new(4, SamplerConfig::GREEDY);
        let mut logits = [0.0; 3];
        assert_eq!(
            sampler.sample(&mut logits, None),
            Err(SampleError::LogitsLength {
                expected: 4,
                found: 3
            })
        );
        let mut logits = [0.0; 4];
        let mask = TokenMask::new_allow_all(5);
        assert_eq!(
            sampler.sample(&mut logits, Some(&mask)),
            Err(SampleError::MaskLength {
                expected: 4,
                found: 5
            })
        );
    }

    #[test]
    fn top_k_one_is_greedy_and_top_k_limits_choices() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32 * 0.1).collect();
        let best = greedy(&logits, None).unwrap();
        let mut sampler = Sampler::new(50, config(5.0, 1, 1.0));
        for _ in 0..20 {
            let mut step = logits.clone();
            assert_eq!(sampler.sample(&mut step, None), Ok(best));
        }
        // top-3 at a high temperature: only the three largest ever appear.
        let mut order: Vec<u32> = (0..50).collect();
        order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        let top3 = &order[..3];
        let mut sampler = Sampler::new(50, config(100.0, 3, 1.0));
        let mut seen = [false; 50];
        for _ in 0..300 {
            let mut step = logits.clone();
            let token = sampler.sample(&mut step, None).unwrap();
            assert!(top3.contains(&token), "{token} not in top 3");
            seen[token as usize] = true;
        }
        assert!(
            top3.iter().all(|&t| seen[t as usize]),
            "all of the top 3 are drawn at T=100"
        );
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // Probabilities at T=1: token 0 has ~0.84, token 1 ~0.11, the rest tiny.
        let mut logits = vec![-10.0f32; 20];
        logits[0] = 4.0;
        logits[1] = 2.0;
        let mut sampler = Sampler::new(20, config(1.0, 0, 0.5));
        for _ in 0..200 {
            let mut step = logits.clone();
            assert_eq!(sampler.sample(&mut step, None), Ok(0));
        }
        let mut sampler = Sampler::new(20, config(1.0, 0, 0.9));
        let mut counts = [0usize; 20];
        for _ in 0..2000 {
            let mut step = logits.clone();
            counts[sampler.sample(&mut step, None).unwrap() as usize] += 1;
        }
        assert!(counts[0] > 1500 && counts[1] > 100, "{counts:?}");
        assert_eq!(
            counts[2..].iter().sum::<usize>(),
            0,
            "tail outside the nucleus"
        );
    }

    #[test]
    fn sampling_follows_the_softmax_distribution() {
        // ln(1), ln(2), ln(3), ln(4): probabilities 0.1, 0.2, 0.3, 0.4.
        let logits = [
            0.0f32,
            core::f32::consts::LN_2,
            1.098_612_3,
            2.0 * core::f32::consts::LN_2,
        ];
        let mut sampler = Sampler::new(4, config(1.0, 0, 1.0));
        let mut counts = [0usize; 4];
        let draws = 40_000;
        for _ in 0..draws {
            let mut step = logits;
            counts[sampler.sample(&mut step, None).unwrap() as usize] += 1;
        }
        for (id, &count) in counts.iter().enumerate() {
            let expected = (id + 1) as f64 / 10.0;
            let got = count as f64 / draws as f64;
            assert!(
                (got - expected).abs() < 0.015,
                "token {id}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let run = |seed| {
            let mut sampler = Sampler::new(
                100,
                SamplerConfig {
                    seed,
                    ..SamplerConfig::default()
                },
            );
            (0..30)
                .map(|_| {
                    let mut step = logits.clone();
                    sampler.sample(&mut step, None).unwrap()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn mask_is_respected_when_sampling() {
        let logits = vec![0.0f32; 200];
        let mut mask = TokenMask::new_block_all(200);
        for id in [3, 77, 150] {
            mask.allow(id);
        }
        let mut sampler = Sampler::new(200, config(1.0, 0, 1.0));
        for _ in 0..300 {
            let mut step = logits.clone();
            let token = sampler.sample(&mut step, Some(&mask)).unwrap();
            assert!(mask.is_allowed(token));
        }
        mask.block_all();
        let mut step = logits.clone();
        assert_eq!(
            sampler.sample(&mut step, Some(&mask)),
            Err(SampleError::NoAllowedToken)
        );
    }

    #[test]
    fn repetition_penalty_applies_once_per_distinct_token_within_the_window() {
        let mut sampler = Sampler::new(
            4,
            SamplerConfig {
                repetition_penalty: 2.0,
                repetition_window: 2,
                ..SamplerConfig::GREEDY
            },
        );
        sampler.record(0);
        sampler.record(1);
        sampler.record(1);
        // Window of 2 holds [1, 1]: only token 1 is penalised, and only once.
        let mut logits = [4.0f32, 4.0, -1.0, 1.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(0));
        assert_eq!(logits, [4.0, 2.0, -1.0, 1.0]);
        // Negative logits are multiplied by the penalty.
        sampler.record(2);
        // The ring now holds [2, 0] (the sampled 0 was recorded, then 2).
        let mut logits = [4.0f32, 3.0, -1.0, 1.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(1));
        assert_eq!(logits, [2.0, 3.0, -2.0, 1.0]);
    }

    #[test]
    fn tiny_temperature_is_greedy_not_nan() {
        let mut sampler = Sampler::new(3, config(1e-39, 0, 1.0));
        let mut logits = [0.5f32, 2.0, 1.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(1));
    }

    #[test]
    fn reset_clears_history_and_reseeds() {
        let mut sampler = Sampler::new(
            3,
            SamplerConfig {
                repetition_penalty: 10.0,
                repetition_window: 4,
                ..SamplerConfig::GREEDY
            },
        );
        let mut logits = [1.0f32, 0.5, 0.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(0));
        let mut logits = [1.0f32, 0.5, 0.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(1), "0 is penalised");
        sampler.reset(3);
        let mut logits = [1.0f32, 0.5, 0.0];
        assert_eq!(sampler.sample(&mut logits, None), Ok(0));
    }
}
