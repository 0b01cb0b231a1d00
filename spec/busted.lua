-- Runs busted inside brine, so that specs see brine's C modules. The spec
-- folder's support/ is on the module path for shared test helpers.
local source = os.getenv("BRINE_SOURCE_DIR") or "."
package.path = source .. "/spec/support/?.lua;" .. package.path
require("busted.runner")({ standalone = false })
