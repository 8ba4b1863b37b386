-- Q0, pass through: every bid, unchanged (nexmark-flink's q0).
SELECT auction, bidder, price, date_time, extra FROM bid;
