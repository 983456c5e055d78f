/* err.c - error codes to text. */
#include "common/err.h"

#include <string.h>

const char *gv_strerror(int code)
{
    if (code == 0)
        return "success";
    /* strerror() of glibc returns static strings for known codes. */
    return strerror(code < 0 ? -code : code);
}
