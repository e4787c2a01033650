/* libFuzzer: the YAML config loader must report errors, never crash, hang or leak. */
#include <stdint.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_config *cfg = NULL;
    struct sl_buf errors = SL_BUF_INIT(1 << 20);
    if (sl_config_parse((const char *)data, size, "fuzz.yaml", &cfg, &errors) == 0)
        sl_config_free(cfg);
    sl_buf_release(&errors);
    return 0;
}
