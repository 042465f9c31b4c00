"""Outputs for people: the 客户分级表 grading table (Excel/CSV), lists, breakdowns,
dashboard figures and the HTML report."""
