//! One instrument's order book: price levels in integer ticks, FIFO queues of integer lots,
//! price-time priority. Knows nothing about accounts; matching returns what traded.

use std::collections::{BTreeMap, VecDeque};
use tradebox_core::Side;

/// Who an order belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// One of the account's orders (by client order id).
    Ours(String),
    /// Liquidity of the synthetic market.
    Synthetic,
}

/// A resting order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resting {
    /// Owner.
    pub owner: Owner,
    /// Lots left.
    pub lots: i64,
}

/// One execution between a taker and a resting maker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The resting side's owner.
    pub maker: Owner,
    /// Price in ticks (the maker's).
    pub price: i64,
    /// Lots traded.
    pub lots: i64,
}

/// Aggregated levels: (price ticks, lots), best first.
pub type Levels = Vec<(i64, i64)>;

/// Aggregated levels with how many orders rest at each: (price ticks, lots, orders).
pub type CountedLevels = Vec<(i64, i64, u32)>;

/// Bids and asks.
#[derive(Debug, Default, Clone)]
pub struct Book {
    bids: BTreeMap<i64, VecDeque<Resting>>,
    asks: BTreeMap<i64, VecDeque<Resting>>,
}

/// True when a taker on `side` with `limit` may trade at `price`.
fn crosses(side: Side, limit: Option<i64>, price: i64) -> bool {
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(l)) => price <= l,
        (Side::Sell, Some(l)) => price >= l,
    }
}

impl Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, VecDeque<Resting>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Best bid and ask prices.
    pub fn best(&self) -> (Option<i64>, Option<i64>) {
        (self.bids.keys().next_back().copied(), self.asks.keys().next().copied())
    }

    /// Aggregated top `n` levels per side, best first: (price ticks, lots).
    pub fn top(&self, n: usize) -> (Levels, Levels) {
        let sum = |q: &VecDeque<Resting>| q.iter().map(|r| r.lots).sum::<i64>();
        let bids = self.bids.iter().rev().take(n).map(|(p, q)| (*p, sum(q))).collect();
        let asks = self.asks.iter().take(n).map(|(p, q)| (*p, sum(q))).collect();
        (bids, asks)
    }

    /// Aggregated top `n` levels per side, best first: (price ticks, lots, resting orders).
    pub fn top_with_counts(&self, n: usize) -> (CountedLevels, CountedLevels) {
        let level = |(p, q): (&i64, &VecDeque<Resting>)| (*p, q.iter().map(|r| r.lots).sum::<i64>(), q.len() as u32);
        let bids = self.bids.iter().rev().take(n).map(level).collect();
        let asks = self.asks.iter().take(n).map(level).collect();
        (bids, asks)
    }

    /// Adds a resting order at the back of its level.
    pub fn rest(&mut self, side: Side, price: i64, owner: Owner, lots: i64) {
        if lots > 0 {
            self.side_mut(side).entry(price).or_default().push_back(Resting { owner, lots });
        }
    }

    /// Removes one of our orders; returns the lots it had left.
    pub fn remove(&mut self, side: Side, price: i64, client_id: &str) -> Option<i64> {
        let levels = self.side_mut(side);
        let queue = levels.get_mut(&price)?;
        let at = queue.iter().position(|r| matches!(&r.owner, Owner::Ours(id) if id == client_id))?;
        let lots = queue.remove(at).map(|r| r.lots);
        if queue.is_empty() {
            levels.remove(&price);
        }
        lots
    }

    /// Removes all synthetic liquidity.
    pub fn clear_synthetic(&mut self) {
        for levels in [&mut self.bids, &mut self.asks] {
            levels.retain(|_, q| {
                q.retain(|r| r.owner != Owner::Synthetic);
                !q.is_empty()
            });
        }
    }

    /// Lots a taker could fill right now from owners other than `exclude_ours` (FOK check).
    pub fn fillable(&self, side: Side, limit: Option<i64>, skip_ours: bool) -> i64 {
        let levels: Box<dyn Iterator<Item = (&i64, &VecDeque<Resting>)>> = match side {
            Side::Buy => Box::new(self.asks.iter()),
            Side::Sell => Box::new(self.bids.iter().rev()),
        };
        levels
            .take_while(|(p, _)| crosses(side, limit, **p))
            .flat_map(|(_, q)| q.iter())
            .filter(|r| !(skip_ours && matches!(r.owner, Owner::Ours(_))))
            .map(|r| r.lots)
            .sum()
    }

    /// Matches a taker against the opposite side, best price first, FIFO within a level, up
    /// to `lots` and while `afford(price, lots)` allows (it returns how many lots the taker can
    /// pay for). Resting orders of ours met by our own taker are removed (self-trade prevention:
    /// cancel the maker) and reported in the second vector. Returns the matches and the removed
    /// makers.
    pub fn take(
        &mut self,
        side: Side,
        limit: Option<i64>,
        mut lots: i64,
        taker_is_ours: bool,
        mut afford: impl FnMut(i64, i64) -> i64,
    ) -> (Vec<Match>, Vec<(String, i64)>) {
        let mut matches = Vec::new();
        let mut self_cancelled = Vec::new();
        let opposite = match side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        while lots > 0 {
            let best = match side {
                Side::Buy => opposite.keys().next().copied(),
                Side::Sell => opposite.keys().next_back().copied(),
            };
            let Some(price) = best.filter(|p| crosses(side, limit, *p)) else { break };
            let Some(queue) = opposite.get_mut(&price) else { break };
            let mut stop = false;
            while lots > 0 {
                let Some(front) = queue.front_mut() else { break };
                if taker_is_ours && let Owner::Ours(id) = &front.owner {
                    self_cancelled.push((id.clone(), front.lots));
                    queue.pop_front();
                    continue;
                }
                let want = lots.min(front.lots);
                let qty = afford(price, want).clamp(0, want);
                if qty == 0 {
                    stop = true;
                    break;
                }
                matches.push(Match { maker: front.owner.clone(), price, lots: qty });
                front.lots -= qty;
                lots -= qty;
                if front.lots == 0 {
                    queue.pop_front();
                }
                if qty < want {
                    stop = true;
                    break;
                }
            }
            if queue.is_empty() {
                opposite.remove(&price);
            }
            if stop {
                break;
            }
        }
        (matches, self_cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(id: &str) -> Owner {
        Owner::Ours(id.to_string())
    }

    #[test]
    fn price_then_time_priority() {
        let mut b = Book::default();
        b.rest(Side::Sell, 101, ours("a"), 5);
        b.rest(Side::Sell, 100, Owner::Synthetic, 3);
        b.rest(Side::Sell, 100, ours("b"), 4);
        let (m, _) = b.take(Side::Buy, Some(101), 10, false, |_, l| l);
        assert_eq!(
            m,
            vec![
                Match { maker: Owner::Synthetic, price: 100, lots: 3 },
                Match { maker: ours("b"), price: 100, lots: 4 },
                Match { maker: ours("a"), price: 101, lots: 3 },
            ]
        );
        assert_eq!(b.top(5).1, vec![(101, 2)]);
    }

    #[test]
    fn limit_stops_matching_and_affordability_caps_it() {
        let mut b = Book::default();
        b.rest(Side::Buy, 99, Owner::Synthetic, 5);
        b.rest(Side::Buy, 98, Owner::Synthetic, 5);
        let (m, _) = b.take(Side::Sell, Some(99), 10, true, |_, l| l);
        assert_eq!(m.iter().map(|x| x.lots).sum::<i64>(), 5);
        let (m, _) = b.take(Side::Sell, None, 10, true, |_, l| l.min(2));
        assert_eq!(m, vec![Match { maker: Owner::Synthetic, price: 98, lots: 2 }]);
    }

    #[test]
    fn our_taker_cancels_our_maker() {
        let mut b = Book::default();
        b.rest(Side::Sell, 100, ours("mine"), 5);
        b.rest(Side::Sell, 100, Owner::Synthetic, 5);
        let (m, cancelled) = b.take(Side::Buy, Some(100), 3, true, |_, l| l);
        assert_eq!(cancelled, vec![("mine".to_string(), 5)]);
        assert_eq!(m, vec![Match { maker: Owner::Synthetic, price: 100, lots: 3 }]);
        assert_eq!(b.fillable(Side::Buy, Some(100), true), 2);
    }

    #[test]
    fn remove_and_clear_synthetic() {
        let mut b = Book::default();
        b.rest(Side::Buy, 100, ours("x"), 5);
        b.rest(Side::Buy, 100, Owner::Synthetic, 5);
        b.clear_synthetic();
        assert_eq!(b.top(5).0, vec![(100, 5)]);
        assert_eq!(b.remove(Side::Buy, 100, "x"), Some(5));
        assert_eq!(b.best(), (None, None));
    }
}
