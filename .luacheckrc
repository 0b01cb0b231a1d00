std = "lua54"
max_line_length = 100
-- API signatures (methods, R.* helpers the compiled templates call, filter
-- and state functions) keep every parameter even where a body ignores one
unused_args = false
-- specs and benchmarks: results ignored on purpose, names reused per case
files["spec"] = { std = "+busted", ignore = { "311", "4.." } }
files["bench"] = { ignore = { "311", "4..", "211" } }
