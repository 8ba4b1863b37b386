-- The bids of a NEXMark run as a table. `{path}` is a file of JSON lines,
-- one bid per line, as `eddy_nexmark::Bid` serializes (date_time in epoch
-- milliseconds). Flink's nexmark reads the bids as a view over one event
-- stream; Eddy SQL has no views yet, so the bids come as a table of their own.
CREATE TABLE bid (
    auction BIGINT,
    bidder BIGINT,
    price BIGINT,
    channel VARCHAR,
    url VARCHAR,
    date_time TIMESTAMP(3),
    extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '{lag_ms}' MILLISECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '{path}',
    'format' = 'json'
);
