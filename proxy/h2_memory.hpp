// nghttp2's allocations on the data path, through per-thread free lists of a few size
// classes. A session allocates and frees stream objects, frame items and header copies by
// the thousand per second, and glibc's malloc and free were a fifth of the HTTP/2 path's
// CPU. Each session lives on its worker's thread, so the lists take no lock; a block freed
// on another thread just joins that thread's list. Blocks past the largest class, and
// blocks past each list's cap, go to malloc and free.
#pragma once

#include <nghttp2/nghttp2.h>

namespace veer::proxy {

nghttp2_mem* h2_memory();

}  // namespace veer::proxy
