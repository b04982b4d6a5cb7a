import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { i18n } from './i18n'
import { useElement } from './element'
import './style.css'

const app = createApp(App).use(i18n).use(router)
useElement(app)
app.mount('#app')
