-- Q2, selection: the bids on every 123rd auction (nexmark-flink's q2).
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
