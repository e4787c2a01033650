// Partial matching of JSON values, as described in shared/wire/README.md.
//
// match(expected, actual) returns a list of mismatch strings (empty = match).
// Objects: every expected key must be present and match; extra actual keys are allowed.
// Arrays: same length, element by element.
// Scalars: strict equality (numbers by value).
// Operators (an expected value that is one of these):
//   "$absent"                      the key must be missing (or the value undefined)
//   "$any"                         anything, but the key must be present
//   {"$type": T}                   T: string|number|integer|boolean|object|array|null
//   {"$prefix": "s"}               a string starting with s
//   {"$contains": "s"}             a string containing s
//   {"$regex": "re"}               a string matching the regular expression
//   {"$nonempty_string": true}     a string of length > 0
//   {"$json": X}                   a string holding JSON that matches X
//   {"$one_of": [A, B, ...]}       matches at least one of the alternatives
//   {"$gte": n} / {"$lte": n}      a number >= n / <= n (both may be given)
//   {"$exact": X}                  deep equality, no extra keys allowed

const OPS = new Set(['$type', '$prefix', '$contains', '$regex', '$nonempty_string', '$json',
  '$one_of', '$gte', '$lte', '$exact']);

export function isOperator(v) {
  if (v === '$absent' || v === '$any') return true;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => OPS.has(k));
}

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function show(v) {
  if (v === undefined) return '(absent)';
  let s;
  try { s = JSON.stringify(v); } catch { s = String(v); }
  if (s !== undefined && s.length > 300) s = s.slice(0, 300) + '…';
  return s;
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeOf(a) !== typeOf(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (a && typeof a === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function matchOp(op, actual, path, out) {
  if (op === '$any') {
    if (actual === undefined) out.push(`${path}: expected present, got (absent)`);
    return;
  }
  if (op === '$absent') {
    if (actual !== undefined) out.push(`${path}: expected absent, got ${show(actual)}`);
    return;
  }
  if (Object.hasOwn(op, '$one_of')) {
    const alts = op.$one_of;
    const errs = [];
    for (const alt of alts) {
      const e = match(alt, actual, path);
      if (e.length === 0) return;
      errs.push(e.join('; '));
    }
    out.push(`${path}: expected one of ${show(alts)}, got ${show(actual)}`);
    return;
  }
  if (actual === undefined) {
    out.push(`${path}: expected ${show(op)}, got (absent)`);
    return;
  }
  if (Object.hasOwn(op, '$type')) {
    const t = op.$type, at = typeOf(actual);
    const ok = t === 'integer' ? Number.isInteger(actual) : at === t;
    if (!ok) out.push(`${path}: expected type ${t}, got ${at} ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$prefix')) {
    if (typeof actual !== 'string' || !actual.startsWith(op.$prefix))
      out.push(`${path}: expected string with prefix ${show(op.$prefix)}, got ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$contains')) {
    if (typeof actual !== 'string' || !actual.includes(op.$contains))
      out.push(`${path}: expected string containing ${show(op.$contains)}, got ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$regex')) {
    if (typeof actual !== 'string' || !new RegExp(op.$regex).test(actual))
      out.push(`${path}: expected string matching /${op.$regex}/, got ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$nonempty_string')) {
    const ok = typeof actual === 'string' && actual.length > 0;
    if (ok !== Boolean(op.$nonempty_string))
      out.push(`${path}: expected ${op.$nonempty_string ? 'a non-empty string' : 'not a non-empty string'}, got ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$gte') || Object.hasOwn(op, '$lte')) {
    if (typeof actual !== 'number') out.push(`${path}: expected a number, got ${show(actual)}`);
    else {
      if (Object.hasOwn(op, '$gte') && !(actual >= op.$gte)) out.push(`${path}: expected >= ${op.$gte}, got ${actual}`);
      if (Object.hasOwn(op, '$lte') && !(actual <= op.$lte)) out.push(`${path}: expected <= ${op.$lte}, got ${actual}`);
    }
  }
  if (Object.hasOwn(op, '$exact')) {
    if (!deepEqual(op.$exact, actual)) out.push(`${path}: expected exactly ${show(op.$exact)}, got ${show(actual)}`);
  }
  if (Object.hasOwn(op, '$json')) {
    if (typeof actual !== 'string') {
      out.push(`${path}: expected a string holding JSON, got ${show(actual)}`);
      return;
    }
    let parsed;
    try { parsed = JSON.parse(actual); } catch (e) {
      out.push(`${path}: expected a string holding JSON, got unparsable ${show(actual)} (${e.message})`);
      return;
    }
    out.push(...match(op.$json, parsed, `${path}<json>`));
  }
}

export function match(expected, actual, path = '$') {
  const out = [];
  if (isOperator(expected)) {
    matchOp(expected, actual, path, out);
    return out;
  }
  if (actual === undefined) {
    out.push(`${path}: expected ${show(expected)}, got (absent)`);
    return out;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) {
      out.push(`${path}: expected array, got ${typeOf(actual)} ${show(actual)}`);
      return out;
    }
    if (actual.length !== expected.length) {
      out.push(`${path}: expected array of length ${expected.length}, got length ${actual.length}: ${show(actual)}`);
      return out;
    }
    expected.forEach((e, i) => out.push(...match(e, actual[i], `${path}[${i}]`)));
    return out;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      out.push(`${path}: expected object, got ${typeOf(actual)} ${show(actual)}`);
      return out;
    }
    for (const [k, v] of Object.entries(expected)) {
      out.push(...match(v, Object.hasOwn(actual, k) ? actual[k] : undefined, `${path}.${k}`));
    }
    return out;
  }
  if (expected !== actual) out.push(`${path}: expected ${show(expected)}, got ${show(actual)}`);
  return out;
}

// Headers: keys compared case-insensitively. actualHeaders is a plain object or a
// Headers instance; multiple values arrive joined by ", ".
export function matchHeaders(expected, actualHeaders, path = 'headers') {
  const lower = {};
  if (typeof Headers !== 'undefined' && actualHeaders instanceof Headers) {
    actualHeaders.forEach((v, k) => { lower[k.toLowerCase()] = v; });
  } else {
    for (const [k, v] of Object.entries(actualHeaders || {})) lower[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  const out = [];
  for (const [k, v] of Object.entries(expected || {})) {
    const key = k.toLowerCase();
    out.push(...match(v, Object.hasOwn(lower, key) ? lower[key] : undefined, `${path}.${key}`));
  }
  return out;
}
