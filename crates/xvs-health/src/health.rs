//! A real server's health as keepalived counts it: `fall` failed checks in a row take an
//! up server down, `rise` successful ones bring a down server up; a server starts up (or
//! down, with `alpha`) until its checks say otherwise.

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// A change of health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

/// The health of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    up: bool,
    /// Results in a row that disagree with `up`.
    against: u32,
    rise: u32,
    fall: u32,
}

impl Health {
    /// A server that starts `up` (keepalived's `alpha` starts it down), changing after
    /// `rise` successes or `fall` failures in a row (each at least 1).
    pub fn new(up: bool, rise: u32, fall: u32) -> Health {
        Health {
            up,
            against: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Counts a check's result; the transition it makes, if any.
    pub fn observe(&mut self, outcome: Outcome) -> Option<Transition> {
        let agrees = (outcome == Outcome::Success) == self.up;
        if agrees {
            self.against = 0;
            return None;
        }
        self.against += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.against < needed {
            return None;
        }
        self.up = !self.up;
        self.against = 0;
        Some(if self.up {
            Transition::Up
        } else {
            Transition::Down
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_failures_in_a_row_take_it_down_rise_successes_bring_it_back() {
        let mut health = Health::new(true, 2, 3);
        assert_eq!(health.observe(Outcome::Failure), None);
        assert_eq!(health.observe(Outcome::Failure), None);
        // A success in between starts the count again.
        assert_eq!(health.observe(Outcome::Success), None);
        assert_eq!(health.observe(Outcome::Failure), None);
        assert_eq!(health.observe(Outcome::Failure), None);
        assert_eq!(health.observe(Outcome::Failure), Some(Transition::Down));
        assert!(!health.is_up());
        assert_eq!(health.observe(Outcome::Failure), None);
        assert_eq!(health.observe(Outcome::Success), None);
        assert_eq!(health.observe(Outcome::Success), Some(Transition::Up));
        assert!(health.is_up());
    }

    #[test]
    fn alpha_starts_down_and_counts_of_zero_mean_one() {
        let mut health = Health::new(false, 0, 0);
        assert!(!health.is_up());
        assert_eq!(health.observe(Outcome::Success), Some(Transition::Up));
        assert_eq!(health.observe(Outcome::Failure), Some(Transition::Down));
    }
}
