"""The annual assessment report per county (art. 16, 年度政府质量工作考核)."""
