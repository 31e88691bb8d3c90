"""Panel draws of city-level experts (art. 15 人才建设, art. 10 回避): drawn, declined
and replaced, published, and verified against the pool's history and the audit chain."""
