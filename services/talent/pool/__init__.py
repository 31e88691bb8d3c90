"""The CQO talent pool and city-level quality experts (art. 15 人才建设, art. 10 回避)."""
