/* err.h - grapevine's one error convention.
 *
 * Every function that can fail returns 0 or a negative error code. The codes are
 * negated errno values (the same convention libuv uses on Unix), so a libuv
 * result can be passed straight through. gv_strerror() turns any code into text.
 */
#ifndef GV_COMMON_ERR_H
#define GV_COMMON_ERR_H

#include <errno.h>

#define GV_OK        0
#define GV_ENOMEM    (-ENOMEM)
#define GV_EINVAL    (-EINVAL)
#define GV_ENOENT    (-ENOENT)
#define GV_EEXIST    (-EEXIST)
#define GV_ERANGE    (-ERANGE)
#define GV_EIO       (-EIO)
#define GV_ETIMEDOUT (-ETIMEDOUT)
#define GV_EAGAIN    (-EAGAIN)
#define GV_EPROTO    (-EPROTO)

/* Text for an error code; never NULL, valid forever. */
const char *gv_strerror(int code);

#endif
