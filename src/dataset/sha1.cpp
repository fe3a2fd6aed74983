// SHA-1 ids of Kaggle patches and the --format parser (small helpers of the dataset stage).
#include <openssl/evp.h>

#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {

DatasetFormat parse_dataset_format(const std::string& s) {
  if (s == "pcam") return DatasetFormat::pcam;
  if (s == "kaggle") return DatasetFormat::kaggle;
  throw UsageError("unknown dataset format '" + s +
                   "': use 'pcam' (HDF5 x/y files + meta CSV) or 'kaggle' (one TIFF per patch + labels CSV)");
}

std::string sha1_hex(const uint8_t* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest accepts a null pointer only for zero bytes; keep that case well defined.
  static const uint8_t empty = 0;
  if (EVP_Digest(size ? data : &empty, size, md, &len, EVP_sha1(), nullptr) != 1 || len != 20)
    throw Error("SHA-1 is not available from OpenSSL (is it restricted by a FIPS configuration?)");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 0x0f];
  }
  return out;
}

}  // namespace wsi
