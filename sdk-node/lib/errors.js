'use strict';
// The errors of libnet: NetError (lib/net-error.js) and its subclasses, one per
// NET_ERR_* code and a base per family of codes (NET_ERR_REDEX_* ->
// RedexError), generated from include/net.h into lib/errors.gen.js.

const { NetError, STATUS_NAMES, statusName } = require('./net-error');
const generated = require('./errors.gen');

const { CLASS_BY_STATUS, ERROR_FAMILIES, ERROR_CLASSES } = generated;

/**
 * The error object for a failed status and its detail message. A code this
 * SDK does not know yet gets its family's base class (say RedexError for a new
 * NET_ERR_REDEX_* code), or NetError.
 */
function errorFor(status, message) {
  let Class = CLASS_BY_STATUS.get(status);
  if (!Class) {
    const family = ERROR_FAMILIES.find((f) => status >= f.lowest && status <= f.highest);
    Class = family ? family.Class : NetError;
  }
  return new Class(message, status);
}

module.exports = {
  ...ERROR_CLASSES,
  ERROR_CLASSES,
  STATUS_NAMES,
  statusName,
  errorFor,
  NetError,
};
