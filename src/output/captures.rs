//! What a route's pattern captured, as the encoders read it. Defined here,
//! not in the router that fills it, so output never imports router (the
//! data flows router → output).

/// Groups (the whole match included) a sequence pattern may have: its
/// spans are kept inline, so a match allocates nothing, and small, as
/// every route match (captures or not) is moved by value.
pub(crate) const MAX_GROUPS: usize = 8;

/// The groups a route's pattern captured in a message: from its regex, or
/// from its sequence form (the same groups, found faster).
pub enum Captures<'e> {
    Regex(regex::Captures<'e>),
    Sequence(Spans<'e>),
}

impl<'e> Captures<'e> {
    /// Group `i`'s text, if it took part in the match (0: the whole match).
    pub fn get(&self, i: usize) -> Option<&'e str> {
        match self {
            Captures::Regex(c) => c.get(i).map(|m| m.as_str()),
            Captures::Sequence(s) => s.get(i),
        }
    }

    /// Groups of the pattern, the whole match included.
    pub fn groups(&self) -> usize {
        match self {
            Captures::Regex(c) => c.len(),
            Captures::Sequence(s) => s.groups(),
        }
    }
}

impl<'e> From<regex::Captures<'e>> for Captures<'e> {
    fn from(c: regex::Captures<'e>) -> Self {
        Captures::Regex(c)
    }
}

/// The groups of a match: all of them take part in every match.
#[derive(Debug, Clone)]
pub struct Spans<'e> {
    pub(crate) text: &'e str,
    pub(crate) groups: usize,
    pub(crate) spans: [(u32, u32); MAX_GROUPS],
}

impl<'e> Spans<'e> {
    /// Groups of the pattern, the whole match included.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Group `i`'s text (0: the whole match).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'e str> {
        if i >= self.groups {
            return None;
        }
        let (start, end) = self.spans.get(i)?;
        self.text.get(*start as usize..*end as usize)
    }
}
