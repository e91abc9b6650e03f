'use strict';
// NetError, the base class of every error coming out of libnet, and the names
// of status codes. Its subclasses (one per NET_ERR_* code, a base per family)
// are generated into lib/errors.gen.js; lib/errors.js gathers them.

const { STATUS, fns } = require('./native');

/** Status code -> name (e.g. -22 -> 'NET_ERR_TOKEN_EXPIRED'). */
const STATUS_NAMES = Object.freeze(
  Object.fromEntries(Object.entries(STATUS).map(([name, code]) => [code, name])),
);

/**
 * The name of a status code. Codes newer than this SDK are named by libnet
 * (net_status_name); a code libnet does not define is `NET_UNKNOWN_STATUS(<code>)`.
 */
function statusName(status) {
  const known = STATUS_NAMES[status];
  if (known !== undefined) return known;
  const name = fns.net_status_name(status);
  return name === 'NET_UNKNOWN_STATUS' ? `${name}(${status})` : name;
}

/** Base class of every error coming out of libnet. */
class NetError extends Error {
  /**
   * @param {string} message libnet's detail (net_last_error_message) or a description
   * @param {number} status the net_status_t code
   */
  constructor(message, status) {
    const code = statusName(status);
    super(message || code);
    this.status = status;
    this.code = code;
  }

  get name() {
    return this.constructor.name;
  }
}

module.exports = { NetError, STATUS_NAMES, statusName };
