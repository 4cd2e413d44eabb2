/*
 * Names and messages for rm_err_t, generated from the one X-macro in
 * include/readmodel/error.h.
 */
#include "readmodel/error.h"

static const char *const names[] = {
#define RM_ERR_NAME(name, msg) #name,
    RM_ERR_MAP(RM_ERR_NAME)
#undef RM_ERR_NAME
};

static const char *const messages[] = {
#define RM_ERR_MSG(name, msg) msg,
    RM_ERR_MAP(RM_ERR_MSG)
#undef RM_ERR_MSG
};

const char *rm_err_name(rm_err_t err) {
    return (unsigned)err < RM_ERR__COUNT ? names[err] : "UNKNOWN";
}

const char *rm_err_str(rm_err_t err) {
    return (unsigned)err < RM_ERR__COUNT ? messages[err] : "unknown error";
}
