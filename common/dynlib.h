/* Shared libraries loaded when first needed rather than linked: for the
 * optional parts of the front ends (etcd's libcurl, TLS's GnuTLS, the
 * --metrics listener's libmicrohttpd), whose libraries every process
 * otherwise maps and relocates at start whether it uses them or not. */
#ifndef IC_COMMON_DYNLIB_H
#define IC_COMMON_DYNLIB_H

#include <stddef.h>

/* One function of a library: its name, and where its address goes. */
struct ic_dynsym {
	const char *name;
	void **fn;
};

/* dlopen soname (RTLD_NOW | RTLD_LOCAL; never closed) and resolve the n
 * symbols into their pointers. 0, or -ELIBACC after logging what was
 * missing, for `what` ("TLS", "etcd"...). Not thread-safe on the same
 * table: call it under the caller's pthread_once. */
int ic_dynlib_load(const char *what, const char *soname, const struct ic_dynsym *syms, size_t n);

#endif
