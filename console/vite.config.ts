import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the gateway at /console/ (one origin: the API is same-origin, no CORS).
// `npm run dev` proxies the API to a running gateway (make run: 127.0.0.1:8080).
export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  build: {
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        manualChunks(id: string) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) return 'echarts'
          if (id.includes('node_modules/element-plus')) return 'element-plus'
          return undefined
        },
      },
    },
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8080' } },
})
