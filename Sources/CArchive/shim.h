#ifndef KAIFANG_CARCHIVE_SHIM_H
#define KAIFANG_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/// AE_IFREG is a cast macro Swift cannot import.
static inline unsigned int kaifang_ae_ifreg(void) { return (unsigned int)AE_IFREG; }
#endif
