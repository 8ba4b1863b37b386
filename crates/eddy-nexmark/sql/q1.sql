-- Q1, currency conversion: every bid with its price in euros. Flink's text
-- multiplies by the DECIMAL 0.908; Eddy's queries convert cents in integer
-- arithmetic (truncating) so that every engine computes the same value.
SELECT auction, bidder, price * 908 / 1000 AS price, date_time, extra FROM bid;
