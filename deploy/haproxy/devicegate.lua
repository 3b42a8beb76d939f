-- devicegate forward-auth for HAProxy (2.5+: core.httpclient).
-- `http-request lua.devicegate RESOURCE` asks devicegate about the request. The user is the
-- verified name haproxy.cfg put in `txn.dg_user` (after `http-request auth` or a JWT check);
-- without one, the client's Basic credentials are passed on, which devicegate reads only for
-- resources whose backend verifies them itself (`serve --basic-user-for email`). It sets:
--   txn.dg_status   200 allow/warn, 401 no user, 403 block/quarantine, 0 devicegate down
--   txn.dg_warning  the warning text on a `warn` (percent-encoded when not ASCII)
--   txn.dg_page     the HTML block page with the rule's message (HTML-escaped)
-- haproxy.cfg decides what to do with them; anything but 200/401/403 is denied (503).

-- Set in haproxy.cfg: `setenv DEVICEGATE_URL http://127.0.0.1:8181/v1/forward-auth/`
local devicegate_url = os.getenv("DEVICEGATE_URL") or "http://127.0.0.1:8181/v1/forward-auth/"
local timeout_ms = 2000

local function unpercent(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function escape_html(s)
  return (s:gsub("[&<>\"']", {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;",
  }))
end

local function first(headers, name)
  local values = headers[name]
  if values == nil then return nil end
  return values[0] or values[1]
end

local function block_page(message, rule)
  if message == nil or message == "" then
    message = "Access from this device to this work service is not allowed."
  end
  local ref = ""
  if rule ~= nil and rule ~= "" then
    ref = "<p><small>rule: " .. escape_html(unpercent(rule)) .. "</small></p>"
  end
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    .. "<title>Device not allowed for work</title></head><body>"
    .. "<h1>Device not allowed for work</h1><p>" .. escape_html(unpercent(message))
    .. "</p>" .. ref .. "</body></html>"
end

core.register_action("devicegate", { "http-req" }, function(txn, resource)
  local req = txn.http:req_get_headers()
  local headers = {
    ["x-original-uri"] = { txn.f:pathq() },
    ["x-forwarded-for"] = { txn.f:src() },
  }
  -- The one client header devicegate reads as a signal; identity comes from haproxy.cfg.
  local agent = first(req, "user-agent")
  if agent ~= nil then headers["user-agent"] = { agent } end
  local user = txn:get_var("txn.dg_user")
  if user ~= nil and user ~= "" then
    headers["x-devicegate-user"] = { user }
  else
    local authorization = first(req, "authorization")
    if authorization ~= nil then headers["authorization"] = { authorization } end
  end
  local secret = os.getenv("DEVICEGATE_PROXY_SECRET")
  if secret ~= nil and secret ~= "" then headers["x-devicegate-proxy-secret"] = { secret } end
  local ok, res = pcall(function()
    return core.httpclient():get({
      url = devicegate_url .. resource, headers = headers, timeout = timeout_ms,
    })
  end)
  local status = 0
  if ok and res ~= nil and res.status ~= nil then status = tonumber(res.status) or 0 end
  -- a 403 that carries no decision (devicegate refused this proxy: not trusted, or no
  -- proxy secret) is a broken check, not a blocked device: fail closed as "down"
  if status == 403 and first(res.headers or {}, "x-devicegate-action") == nil then status = 0 end
  txn:set_var("txn.dg_status", status)
  if status == 200 then
    local warning = first(res.headers or {}, "x-devicegate-warning")
    if warning ~= nil then txn:set_var("txn.dg_warning", warning) end
  elseif status == 403 then
    local h = res.headers or {}
    txn:set_var("txn.dg_page", block_page(first(h, "x-devicegate-message"),
                                          first(h, "x-devicegate-rule")))
  end
end, 1)
