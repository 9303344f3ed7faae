//! Centring each language: a post's embedding less its language's mean, made unit length again,
//! before the heads read it.
//!
//! A multilingual encoder places each language in a region of its own: an Italian tweet and
//! its English translation are close, but every Italian vector shares an offset that no English
//! one has. Heads trained mostly on English read part of that offset as evidence, and on a
//! language they saw little of, the scores shift (Italian's F1 at 0.5 on an unseen crisis was
//! 0.26 below English's, with a good ranking). Taking each language's mean off removes the
//! offset and keeps what tells posts of one language apart (measured in `docs/classifier.md`).
//!
//! Where a language's mean comes from:
//! - **a language of the training data** ([`MIN_POSTS`] posts or more, as
//!   [`vigie_record::lang::detect`] finds it, `und` included): the mean of its training posts,
//!   halfway between its `danger` posts and its other labelled ones (so that a language whose
//!   training posts are mostly alerts is not centred on alerts), stored with the heads (so the
//!   model id covers it); it never changes while Vigie runs;
//! - **any other language**: the running mean of the posts of that language the classifier has
//!   scored so far ([`StreamMeans`]), shrunk towards the mean of all training posts (taken the
//!   same way) as if that mean were [`MIN_POSTS`] posts more: a language's first post is
//!   centred on the training mean, and its own mean takes over as its posts come. The stream
//!   needs no labels.
//!
//! Guarantees: the training languages' scores depend on the post alone; another language's
//! depend on the posts of that language the same classifier scored before it (a replay of the
//! same stream gives the same scores; a restart starts its means again). Occlusion's variants of
//! a post do not count as posts of the stream.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Fewest training posts of a language for its mean to be stored; also the weight of the
/// training mean in a stream language's running mean.
pub const MIN_POSTS: usize = 50;

/// The language of `text` as centring keys it and `vigie eval --by lang` groups by it: the
/// detected ISO 639-1 code, or `und`.
pub fn language(text: &str) -> String {
    vigie_record::lang::detect(text).unwrap_or_else(|| "und".into())
}

/// One training language's mean embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageMean {
    /// Training posts it is the mean of.
    pub posts: usize,
    /// The mean embedding.
    pub mean: Vec<f32>,
}

/// The means the heads were trained with: per training language, and over every training post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Centring {
    /// Language code -> its training posts' mean.
    pub languages: BTreeMap<String, LanguageMean>,
    /// The mean of every training post: a new language's starting point.
    pub overall: Vec<f32>,
}

impl Centring {
    /// The means of `embeddings`, whose posts are in the languages `langs` and have the
    /// `danger` values `danger` (`None`: unknown), all in the same order.
    ///
    /// A language's mean is taken halfway between the mean of its `danger` posts and that of
    /// its other labelled posts, when it has both: its training data may be mostly one or the
    /// other (French's is mostly hand-written alerts), and a plain mean would then carry part
    /// of the direction the heads must read. Without both, it is the plain mean of its posts.
    pub fn fit(langs: &[String], danger: &[Option<bool>], embeddings: &[Vec<f32>]) -> Centring {
        let dim = embeddings.first().map_or(0, Vec::len);
        // Per language: every post, its danger posts, its other labelled posts.
        let mut sums: BTreeMap<&str, [Sum; 3]> = BTreeMap::new();
        let mut overall = [Sum::new(dim), Sum::new(dim), Sum::new(dim)];
        for ((lang, y), x) in langs.iter().zip(danger).zip(embeddings) {
            let lang_sums = sums
                .entry(lang)
                .or_insert_with(|| [Sum::new(dim), Sum::new(dim), Sum::new(dim)]);
            for s in [lang_sums, &mut overall] {
                s[0].add(x);
                match y {
                    Some(true) => s[1].add(x),
                    Some(false) => s[2].add(x),
                    None => {}
                }
            }
        }
        Centring {
            languages: sums
                .into_iter()
                .filter(|(_, s)| s[0].n >= MIN_POSTS)
                .map(|(lang, s)| {
                    let mean = LanguageMean {
                        posts: s[0].n,
                        mean: balanced(&s),
                    };
                    (lang.to_string(), mean)
                })
                .collect(),
            overall: balanced(&overall),
        }
    }

    /// The mean a post of `lang` is centred on: its training mean, else its stream mean.
    pub fn mean_of(&self, lang: &str, stream: &StreamMeans) -> Vec<f32> {
        match self.languages.get(lang) {
            Some(l) => l.mean.clone(),
            None => stream.shrunk(lang, &self.overall),
        }
    }

    /// The mean a stream post `x` of `lang` is centred on, after counting it in `stream` when
    /// `observe` (a post of the stream, not a variant of one) and its language is not a
    /// training language.
    pub fn stream_mean(
        &self,
        lang: &str,
        x: &[f32],
        stream: &mut StreamMeans,
        observe: bool,
    ) -> Vec<f32> {
        if observe && !self.languages.contains_key(lang) {
            stream.add(lang, x);
        }
        self.mean_of(lang, stream)
    }

    /// Centres `x`, a post of `lang`, on [`Centring::stream_mean`]: its language's mean off,
    /// then unit length.
    pub fn center(
        &self,
        lang: &str,
        x: &[f32],
        stream: &mut StreamMeans,
        observe: bool,
    ) -> Vec<f32> {
        subtract_and_normalise(x, &self.stream_mean(lang, x, stream, observe))
    }

    /// The mean a training post of `lang` is centred on: its language's training mean, or the
    /// overall mean for a language with too few posts.
    pub fn training_mean(&self, lang: &str) -> &[f32] {
        self.languages.get(lang).map_or(&self.overall, |l| &l.mean)
    }

    /// Centres the embeddings of training posts in the languages `langs`
    /// ([`Centring::training_mean`]).
    pub fn center_training(&self, langs: &[String], embeddings: &[Vec<f32>]) -> Vec<Vec<f32>> {
        langs
            .iter()
            .zip(embeddings)
            .map(|(lang, x)| subtract_and_normalise(x, self.training_mean(lang)))
            .collect()
    }
}

/// Halfway between the means of the danger posts and of the other labelled posts, when there
/// are both; else the mean of every post.
fn balanced(s: &[Sum; 3]) -> Vec<f32> {
    if s[1].n == 0 || s[2].n == 0 {
        return s[0].mean();
    }
    s[1].mean()
        .iter()
        .zip(s[2].mean())
        .map(|(a, b)| 0.5 * (a + b))
        .collect()
}

/// `x - mean`, unit length.
pub fn subtract_and_normalise(x: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut out: Vec<f32> = x.iter().zip(mean).map(|(a, m)| a - m).collect();
    let norm = out.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
    out.iter_mut().for_each(|a| *a /= norm);
    out
}

/// A running sum of vectors, in f64.
#[derive(Debug, Clone, Default)]
struct Sum {
    total: Vec<f64>,
    n: usize,
}

impl Sum {
    fn new(dim: usize) -> Sum {
        Sum {
            total: vec![0.0; dim],
            n: 0,
        }
    }

    fn add(&mut self, x: &[f32]) {
        if self.total.len() < x.len() {
            self.total.resize(x.len(), 0.0);
        }
        for (t, a) in self.total.iter_mut().zip(x) {
            *t += f64::from(*a);
        }
        self.n += 1;
    }

    fn mean(&self) -> Vec<f32> {
        let n = self.n.max(1) as f64;
        self.total.iter().map(|t| (t / n) as f32).collect()
    }
}

/// The running sums of the stream's posts in languages the training data lacked.
#[derive(Debug, Clone, Default)]
pub struct StreamMeans(HashMap<String, Sum>);

impl StreamMeans {
    /// Counts `x`, a post of `lang`.
    pub fn add(&mut self, lang: &str, x: &[f32]) {
        self.0
            .entry(lang.to_string())
            .or_insert_with(|| Sum::new(x.len()))
            .add(x);
    }

    /// Posts of `lang` counted so far.
    pub fn posts(&self, lang: &str) -> usize {
        self.0.get(lang).map_or(0, |s| s.n)
    }

    /// The mean of `lang`'s posts with `prior` counted as [`MIN_POSTS`] posts more.
    fn shrunk(&self, lang: &str, prior: &[f32]) -> Vec<f32> {
        let k = MIN_POSTS as f64;
        match self.0.get(lang) {
            None => prior.to_vec(),
            Some(s) => prior
                .iter()
                .zip(&s.total)
                .map(|(p, t)| ((t + k * f64::from(*p)) / (s.n as f64 + k)) as f32)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> bool {
        (v.iter().map(|a| a * a).sum::<f32>().sqrt() - 1.0).abs() < 1e-5
    }

    #[test]
    fn training_languages_keep_their_mean_and_small_ones_do_not() {
        let mut langs = vec!["en".to_string(); MIN_POSTS];
        let mut x = vec![vec![1.0, 0.0]; MIN_POSTS];
        langs.push("pt".into());
        x.push(vec![0.0, 1.0]);
        let c = Centring::fit(&langs, &vec![None; langs.len()], &x);
        assert_eq!(c.languages.keys().collect::<Vec<_>>(), ["en"]);
        assert_eq!(c.languages["en"].posts, MIN_POSTS);
        assert_eq!(c.languages["en"].mean, [1.0, 0.0]);
        let n = (MIN_POSTS + 1) as f32;
        assert!((c.overall[1] - 1.0 / n).abs() < 1e-6, "{:?}", c.overall);
        // A training post of a small language is centred on the overall mean.
        let centred = c.center_training(&langs[MIN_POSTS..], &x[MIN_POSTS..]);
        assert!(unit(&centred[0]));
        // (0, 1) less (50/51, 1/51): (-50/51, 50/51), unit length.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((centred[0][0] + h).abs() < 1e-5, "{centred:?}");
        assert!((centred[0][1] - h).abs() < 1e-5, "{centred:?}");
    }

    #[test]
    fn a_language_s_mean_lies_halfway_between_its_danger_posts_and_the_others() {
        // Nine alerts for one calm post, and unlabelled posts that do not count.
        let mut danger = vec![Some(true); 9 * MIN_POSTS];
        let mut x = vec![vec![1.0, 0.0]; 9 * MIN_POSTS];
        danger.extend(vec![Some(false); MIN_POSTS]);
        x.extend(vec![vec![0.0, 1.0]; MIN_POSTS]);
        danger.extend(vec![None; MIN_POSTS]);
        x.extend(vec![vec![5.0, 5.0]; MIN_POSTS]);
        let langs = vec!["fr".to_string(); x.len()];
        let c = Centring::fit(&langs, &danger, &x);
        assert_eq!(c.languages["fr"].posts, 11 * MIN_POSTS);
        assert_eq!(c.languages["fr"].mean, [0.5, 0.5]);
        assert_eq!(c.overall, [0.5, 0.5]);
    }

    #[test]
    fn a_new_language_moves_from_the_overall_mean_to_its_own_and_variants_do_not_count() {
        let c = Centring {
            languages: [(
                "en".to_string(),
                LanguageMean {
                    posts: 100,
                    mean: vec![1.0, 0.0, 0.0],
                },
            )]
            .into(),
            overall: vec![1.0, 0.0, 0.0],
        };
        let mut stream = StreamMeans::default();
        // An English post: its training mean, and the stream is not touched.
        let en = c.center("en", &[1.0, 0.5, 0.0], &mut stream, true);
        assert_eq!(stream.posts("en"), 0);
        assert!((en[1] - 1.0).abs() < 1e-6, "{en:?}");
        // Italian posts sit at (0, 1, ±0.5): their offset is (0, 1, 0).
        let first = c.center("it", &[0.0, 1.0, 0.5], &mut stream, true);
        assert!(unit(&first));
        for i in 0..2000 {
            let sign = if i % 2 == 0 { 0.5 } else { -0.5 };
            c.center("it", &[0.0, 1.0, sign], &mut stream, true);
        }
        assert_eq!(stream.posts("it"), 2001);
        let later = c.center("it", &[0.0, 1.0, 0.5], &mut stream, false);
        assert_eq!(stream.posts("it"), 2001, "a variant is not a post");
        // Once the language's own mean has taken over, what is left is what sets the post
        // apart from other Italian posts.
        assert!(later[2] > 0.99, "{later:?}");
        assert!(first[2] < 0.5, "{first:?}");
    }
}
