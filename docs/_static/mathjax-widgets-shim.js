/* The ipywidgets HTML manager 1.x typesets widget labels with MathJax 2's `MathJax.Hub.Queue(...)`; this site
   serves MathJax 3, which has no `Hub`, so that call would throw a page error. Give every object that becomes
   `window.MathJax` (Sphinx's configuration, then MathJax 3 itself) a `Hub.Queue` that typesets with MathJax 3. */
(function () {
  "use strict";
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i], element = Array.isArray(job) ? job[2] : undefined;
        var mj = window.MathJax;
        if (mj && typeof mj.typesetPromise === "function") {
          mj.typesetPromise(element ? [element] : undefined).catch(function () {});
        }
      }
    }
  };
  var current = window.MathJax;
  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) {
      try { Object.defineProperty(value, "Hub", {value: hub, configurable: true, enumerable: false}); }
      catch (e) { /* a frozen object: leave it */ }
    }
    return value;
  }
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
  if (current) withHub(current);
})();
