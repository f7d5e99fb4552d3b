// test_header_cxx.cpp - <sluice/plugin.h> compiles as C++ (-pedantic) and a
// C++ plugin can fill the descriptor and use the convenience macros.

#include <sluice/plugin.h>

static int
cxx_config_parse(const sl_api_t *, sl_conf_ctx_t *, const char *, size_t, void **conf)
{
    *conf = nullptr;
    return 0;
}

static sl_status_t
cxx_access(const sl_api_t *api, sl_req_t *r, void *)
{
    (void)api->req_header_set(r, SL_STR("x-cxx"), SL_STR("1"));
    return SL_STATUS_CONTINUE;
}

extern "C" SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "t-cxx", "1.0.0", 100,     cxx_config_parse, nullptr, nullptr,   nullptr,
    cxx_access,    nullptr, nullptr, nullptr, nullptr,          nullptr, {nullptr},
};

int
main()
{
    sl_str_t s = SL_STR("apikey");
    if (!SL_STR_EQ(s, "apikey") || sluice_plugin.abi_minor != SL_PLUGIN_ABI_MINOR)
        return 1;
    return sluice_plugin.access == cxx_access ? 0 : 1;
}
